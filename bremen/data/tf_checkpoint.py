"""Read variables of a TensorFlow checkpoint (tensor bundle) without TensorFlow.

A checkpoint ``PREFIX`` is ``PREFIX.index`` plus ``PREFIX.data-SSSSS-of-NNNNN`` shards. The index is a
LevelDB-format table (an SSTable: data blocks of prefix-compressed key/value entries, an index block pointing
at them, a 48-byte footer ending in a magic number). Its empty key holds a ``BundleHeaderProto`` (number of
shards, endianness); every other key is a tensor name whose value is a ``BundleEntryProto`` (dtype, shape,
shard_id, offset, size): the tensor's bytes lie raw, row-major and little-endian, at ``offset`` in that shard.
TensorFlow writes the index blocks uncompressed (``tensor_bundle.cc``). Checksums are not verified; sizes are.

:class:`Unsupported` is raised for what this reader does not handle (compressed blocks, big-endian bundles,
partitioned tensors, non-numeric dtypes) so a caller can fall back to TensorFlow itself.
"""

from __future__ import annotations

import os
import struct

import numpy as np

_MAGIC = 0xDB4775248B80FB57
# tensorflow/core/framework/types.proto DataType -> numpy
_DTYPES = {
    1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64, 10: np.bool_,
    17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64,
}


class Unsupported(Exception):
    """The checkpoint uses a feature this reader does not implement."""


class Corrupt(Exception):
    """The files are not a well-formed tensor bundle."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise Corrupt("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> list[tuple[int, object]]:
    """(field number, value) pairs of a serialized protobuf message: ints for varint and fixed fields, bytes
    for length-delimited ones."""
    fields, pos = [], 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        else:
            raise Corrupt(f"protobuf wire type {wire}")
        fields.append((number, value))
    if pos != len(buf):
        raise Corrupt("truncated protobuf message")
    return fields


def _block(data: bytes, handle: bytes) -> list[tuple[bytes, bytes]]:
    """Key/value entries of the SSTable block at a serialized BlockHandle (varint offset, varint size)."""
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if offset + size + 5 > len(data):
        raise Corrupt("block past the end of the index file")
    if data[offset + size] != 0:
        raise Unsupported(f"compressed index block (type {data[offset + size]})")
    block = data[offset:offset + size]
    (num_restarts,) = struct.unpack_from("<I", block, size - 4)
    end = size - 4 - 4 * num_restarts
    entries, key, pos = [], b"", 0
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos:pos + value_len]))
        pos += value_len
    return entries


class TensorBundle:
    """The tensors of one checkpoint, by name; :meth:`read` loads one as a numpy array."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        with open(prefix + ".index", "rb") as fh:
            data = fh.read()
        if len(data) < 48 or struct.unpack_from("<Q", data, len(data) - 8)[0] != _MAGIC:
            raise Corrupt("no table footer (magic number missing)")
        footer = data[-48:-8]
        _, pos = _varint(footer, 0)  # metaindex handle: offset
        _, pos = _varint(footer, pos)  # metaindex handle: size
        index_handle = footer[pos:]
        self.num_shards = 1
        self.entries: dict[str, dict] = {}
        for _, data_handle in _block(data, index_handle):
            for key, value in _block(data, data_handle):
                fields = _proto_fields(value)
                if key == b"":
                    header = dict(fields)
                    if header.get(2, 0) != 0:
                        raise Unsupported("big-endian tensor bundle")
                    self.num_shards = int(header.get(1, 1))
                else:
                    self.entries[key.decode()] = _entry(fields)

    def read(self, name: str) -> np.ndarray:
        e = self.entries[name]
        if e["slices"]:
            raise Unsupported(f"partitioned tensor {name}")
        if e["dtype"] not in _DTYPES:
            raise Unsupported(f"tensor {name} has TensorFlow dtype {e['dtype']}")
        dtype = np.dtype(_DTYPES[e["dtype"]]).newbyteorder("<")
        count = int(np.prod(e["shape"], dtype=np.int64))
        if count * dtype.itemsize != e["size"]:
            raise Corrupt(f"tensor {name}: {e['size']} bytes for shape {e['shape']} of {dtype}")
        shard = f"{self.prefix}.data-{e['shard_id']:05d}-of-{self.num_shards:05d}"
        if not os.path.exists(shard):
            raise Corrupt(f"missing data file {os.path.basename(shard)}")
        with open(shard, "rb") as fh:
            fh.seek(e["offset"])
            raw = fh.read(e["size"])
        if len(raw) != e["size"]:
            raise Corrupt(f"data file {os.path.basename(shard)} is truncated")
        return np.frombuffer(raw, dtype=dtype).reshape(e["shape"]).astype(dtype.newbyteorder("="))


def _entry(fields: list[tuple[int, object]]) -> dict:
    """BundleEntryProto: 1 dtype, 2 shape (TensorShapeProto: 2 dim {1 size}), 3 shard_id, 4 offset, 5 size,
    7 slices."""
    entry = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "slices": False}
    for number, value in fields:
        if number == 1:
            entry["dtype"] = value
        elif number == 2:
            entry["shape"] = [dict(_proto_fields(dim)).get(1, 0) for n, dim in _proto_fields(value) if n == 2]
        elif number == 3:
            entry["shard_id"] = value
        elif number == 4:
            entry["offset"] = value
        elif number == 5:
            entry["size"] = value
        elif number == 7:
            entry["slices"] = True
    return entry
