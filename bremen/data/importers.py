"""Importers from the dataset formats in the wild into :class:`~bremen.data.dataset.Dataset`.

- :func:`import_d4rl`: D4RL-layout HDF5 files, including v0 files without ``timeouts`` or
  ``next_observations``.
- :func:`bremen.data.minari.import_minari`: a local Minari dataset (§E.3): the HDF5 backend read with h5py
  only, the Arrow and Parquet backends with pyarrow.
- :func:`import_brac`: BRAC's TF-checkpoint replay buffers (§A.2), read without TensorFlow
  (falls back to TensorFlow only for checkpoint features the built-in reader does not handle).

Each returns a validated Dataset whose metadata records ``source_format``, ``source`` and what the import
changed. Every problem with the input is a one-line :class:`~bremen.errors.UserError` naming the path.
"""

from __future__ import annotations

import os
import re
import struct

import h5py
import numpy as np

from bremen.data import tf_checkpoint
from bremen.data.dataset import Dataset, load_dataset, open_hdf5, read_metadata, resolve_task
from bremen.data.minari import import_minari, minari_data_dir
from bremen.errors import UserError

FORMATS = ("d4rl", "minari", "brac", "bremen")


def _squeeze_column(a: np.ndarray, key: str, source: str) -> np.ndarray:
    """[N, 1] -> [N] (some D4RL files store rewards and flags that way, D4RL's loader squeezes them)."""
    if a.ndim == 2 and a.shape[1] == 1:
        return a[:, 0]
    if a.ndim != 1:
        raise UserError(f"{source}: '{key}' has shape {a.shape}, expected [N] or [N, 1]")
    return a


def _scalar_leaves(group: h5py.Group, prefix: str) -> dict:
    """Scalar numbers and strings below ``group`` as ``{prefix/path: value}``; arrays (policy weights) skipped."""
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.shape == ():
            value = obj[()]
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            elif isinstance(value, np.generic) and value.dtype.kind in "biuf":
                value = value.item()
            else:
                return
            out[f"{prefix}/{name}"] = value

    group.visititems(visit)
    return out


def _end_mask(terminals: np.ndarray, timeouts: np.ndarray) -> np.ndarray:
    ends = terminals | timeouts
    ends[-1:] = True
    return ends


def infer_timeouts(terminals: np.ndarray, horizon: int) -> np.ndarray:
    """Timeouts of a file without them (D4RL v0): a step counter restarts after every terminal and every
    ``horizon`` steps; the ``horizon``-th step of an episode without a terminal there is a timeout."""
    index = np.arange(len(terminals))
    start = np.zeros(len(terminals), np.int64)
    start[1:] = np.where(terminals[:-1], index[1:], 0)
    step = index - np.maximum.accumulate(start)
    return ((step + 1) % horizon == 0) & ~terminals


def import_d4rl(path: str, task=None, horizon: int = 1000) -> Dataset:
    """A D4RL-layout HDF5 file as a Dataset.

    - float arrays are cast to float32, flags to bool; ``[N, 1]`` rewards/terminals/timeouts are squeezed;
    - a row with both flags keeps the terminal (it still ends the episode), counted in ``both_flags_rows``;
    - ``infos/`` is ignored; scalar and string leaves of ``metadata/`` become ``source_metadata/<path>``;
      root attributes (e.g. of a bremen file being repaired) are kept;
    - no ``timeouts`` (v0 files): inferred with :func:`infer_timeouts` (``timeouts_inferred_horizon``);
    - no ``next_observations`` (v0 files): ``next_observations[t] = observations[t + 1]`` within an episode;
      a row that ends an episode has no known next observation, so it is dropped and the row before it (same
      episode) becomes a timeout; ``dropped_episode_end_rows`` records how many were dropped. D4RL's own
      ``qlearning_dataset`` instead pairs such rows with the next episode's first observation.
    """
    source = os.fspath(path)
    with open_hdf5(source) as f:
        found = sorted(f.keys())
        for key in ("observations", "actions", "rewards", "terminals"):
            if not isinstance(f.get(key), h5py.Dataset):
                raise UserError(
                    f"{source}: missing key '{key}' (found: {', '.join(found) or 'nothing'}); a D4RL file needs "
                    f"observations, actions, rewards and terminals"
                )
        raw = {k: f[k][()] for k in ("observations", "actions", "rewards", "terminals", "timeouts",
                                     "next_observations") if isinstance(f.get(k), h5py.Dataset)}
        metadata = read_metadata(f, source)
        for stale in ("bremen_version", "created"):
            metadata.pop(stale, None)
        if isinstance(f.get("metadata"), h5py.Group):
            metadata.update(_scalar_leaves(f["metadata"], "source_metadata"))
    for k in ("observations", "actions", "next_observations"):
        if k in raw and raw[k].ndim != 2:
            raise UserError(f"{source}: '{k}' has shape {raw[k].shape}, expected [N, dim]")
    cast = sorted(k for k, a in raw.items() if a.dtype.kind == "f" and a.dtype != np.float32)
    if cast:
        metadata["cast_to_float32"] = cast
    rewards = _squeeze_column(raw["rewards"], "rewards", source)
    terminals = _squeeze_column(raw["terminals"], "terminals", source).astype(bool)
    n = len(terminals)
    if len(raw["observations"]) != n or len(rewards) != n or len(raw["actions"]) != n:
        lengths = ", ".join(f"{k} {len(raw[k])}" for k in raw)
        raise UserError(f"{source}: arrays have different lengths ({lengths}); every key needs one row per step")
    metadata.update({"source_format": "d4rl", "source": os.path.basename(source)})
    if "timeouts" in raw:
        timeouts = _squeeze_column(raw["timeouts"], "timeouts", source).astype(bool)
        if len(timeouts) != n:
            raise UserError(f"{source}: 'timeouts' has {len(timeouts)} rows but 'terminals' {n}")
        both = int(np.sum(terminals & timeouts))
        if both:
            metadata["both_flags_rows"] = both
        timeouts &= ~terminals
    else:
        if horizon < 1:
            raise UserError(f"{source}: has no 'timeouts' and the horizon to infer them is {horizon}; "
                            f"give --horizon >= 1")
        timeouts = infer_timeouts(terminals, horizon)
        metadata["timeouts_inferred_horizon"] = int(horizon)
    arrays = {"observations": raw["observations"], "actions": raw["actions"], "rewards": rewards,
              "terminals": terminals, "timeouts": timeouts}
    if "next_observations" in raw:
        arrays["next_observations"] = raw["next_observations"]
    else:
        ends = _end_mask(terminals, timeouts)
        keep = np.flatnonzero(~ends)
        arrays = {k: a[keep] for k, a in arrays.items()}
        arrays["next_observations"] = raw["observations"][keep + 1]
        arrays["terminals"] = np.zeros(len(keep), bool)
        arrays["timeouts"] = ends[keep + 1]
        metadata["dropped_episode_end_rows"] = int(ends.sum())
    task = resolve_task(task)
    if task is not None:
        metadata["task"] = task.name
    return Dataset.from_arrays(arrays, metadata, source, task)


BRAC_VARIABLES = ("_s1", "_s2", "_a1", "_a2", "_reward", "_discount", "_current_size")


def brac_prefix(path: str) -> str:
    """The checkpoint prefix (``.../data``) of a BRAC dataset given as the prefix, its ``.index`` or its folder."""
    path = os.fspath(path)
    if path.endswith(".index"):
        path = path[: -len(".index")]
    if os.path.isdir(path):
        path = os.path.join(path, "data")
    if not os.path.isfile(path + ".index"):
        raise UserError(
            f"{path}: no checkpoint index {path}.index; give the BRAC data prefix (.../data) or its folder"
        )
    return path


def _read_brac_tensors(prefix: str) -> dict:
    names = {v: f"data/{v}/.ATTRIBUTES/VARIABLE_VALUE" for v in BRAC_VARIABLES}
    try:
        bundle = tf_checkpoint.TensorBundle(prefix)
        missing = [v for v, key in names.items() if key not in bundle.entries]
        if missing:
            found = ", ".join(sorted(bundle.entries)) or "nothing"
            raise UserError(
                f"{prefix}: not a BRAC dataset checkpoint: no variable 'data/{missing[0]}' (found: {found})"
            )
        return {v: bundle.read(key) for v, key in names.items()}
    except (tf_checkpoint.Corrupt, struct.error, IndexError) as e:
        raise UserError(f"{prefix}: not a readable TensorFlow checkpoint ({e}); check both data.* files are complete")
    except tf_checkpoint.Unsupported as unsupported:
        try:
            import tensorflow as tf
        except ImportError:
            raise UserError(
                f"{prefix}: the checkpoint uses a feature the built-in reader does not handle ({unsupported}); "
                f"install the brac extra: pip install 'bremen[brac]'"
            ) from None
        return {v: tf.train.load_variable(prefix, key) for v, key in names.items()}


def episode_flags_by_continuity(s1: np.ndarray, s2: np.ndarray, discount: np.ndarray):
    """(terminals, timeouts) of BRAC transitions: ``discount == 0`` is a terminal; otherwise a step ends its
    episode when the next row does not continue it exactly (``s2[t] != s1[t + 1]``: a time limit or a
    block boundary of a mixture), and the last row always does."""
    terminals = discount == 0
    continues = np.zeros(len(s1), bool)
    continues[:-1] = np.all(s2[:-1] == s1[1:], axis=tuple(range(1, s1.ndim)))
    return terminals, ~terminals & ~continues


def import_brac(path: str, task=None) -> Dataset:
    """A BRAC dataset checkpoint (``data.index`` + ``data.data-00000-of-00001``) as a Dataset.

    Takes the first ``_current_size`` rows of ``_s1, _a1, _reward, _s2`` and rebuilds the episode flags with
    :func:`episode_flags_by_continuity`. ``_a2`` (the next action BRAC-dual uses) is not kept.
    """
    prefix = brac_prefix(path)
    t = _read_brac_tensors(prefix)
    size = int(t["_current_size"])
    capacity = len(t["_s1"])
    if not 0 < size <= capacity:
        raise UserError(f"{prefix}: _current_size is {size} for a buffer of {capacity} rows; nothing to import")
    s1, s2 = t["_s1"][:size], t["_s2"][:size]
    terminals, timeouts = episode_flags_by_continuity(s1, s2, t["_discount"][:size])
    arrays = {"observations": s1, "actions": t["_a1"][:size], "rewards": t["_reward"][:size],
              "next_observations": s2, "terminals": terminals, "timeouts": timeouts}
    for k in ("observations", "actions", "next_observations"):
        if arrays[k].ndim != 2:
            raise UserError(f"{prefix}: '{k}' has shape {arrays[k].shape}, expected [N, dim]")
    metadata = {"source_format": "brac", "source": prefix, "brac_current_size": size, "brac_capacity": capacity}
    task = resolve_task(task)
    if task is not None:
        metadata["task"] = task.name
    return Dataset.from_arrays(arrays, metadata, prefix, task)


def detect_format(path: str) -> str:
    """``minari``, ``brac``, ``bremen`` or ``d4rl`` for a source path (see docs/datasets-format.md)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "data.index")):
            return "brac"
        return "minari"
    if path.endswith(".index") or os.path.isfile(path + ".index"):
        return "brac"
    if os.path.basename(path) == "main_data.hdf5":
        return "minari"
    if not os.path.exists(path):
        minari_data_dir(path)  # a Minari dataset id, or no such file
        return "minari"
    with open_hdf5(path) as f:
        if "bremen_version" in f.attrs:
            return "bremen"
        if any(re.fullmatch(r"episode_\d+", n) for n in f):
            return "minari"
    return "d4rl"


def import_any(path: str, fmt: str = "auto", task=None, horizon: int = 1000) -> Dataset:
    """Read ``path`` in format ``fmt`` (``auto`` detects it with :func:`detect_format`)."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "d4rl":
        return import_d4rl(path, task, horizon)
    if fmt == "minari":
        return import_minari(path, task)
    if fmt == "brac":
        return import_brac(path, task)
    if fmt == "bremen":
        return load_dataset(path, task)
    raise UserError(f"unknown dataset format {fmt!r}; use auto, {', '.join(FORMATS)}")


def inferred_note(ds: Dataset) -> str:
    """What reading a non-bremen file inferred or changed, from its import metadata ('' for a bremen file)."""
    m = ds.metadata
    fmt = m.get("source_format")
    if not fmt:
        return ""
    parts = []
    if m.get("cast_to_float32"):
        parts.append(f"{', '.join(m['cast_to_float32'])} cast to float32")
    if "timeouts_inferred_horizon" in m:
        parts.append(f"no timeouts: inferred at every {m['timeouts_inferred_horizon']} steps without a terminal")
    if "dropped_episode_end_rows" in m:
        parts.append(f"no next_observations: taken from the next rows, {m['dropped_episode_end_rows']} episode-end "
                     f"rows dropped")
    if m.get("both_flags_rows"):
        parts.append(f"{m['both_flags_rows']} rows with both flags kept as terminals")
    return f"read as a {fmt} file" + (f" ({'; '.join(parts)})" if parts else "")


def read_dataset(path, task=None) -> Dataset:
    """Any dataset where bremen reads one: a bremen file, or a D4RL-layout HDF5 file, a Minari dataset or a BRAC
    checkpoint converted on the fly with the converter's rules (:func:`inferred_note` says what was inferred)."""
    path = os.fspath(path)
    source_dir = os.path.isdir(path) and any(os.path.isfile(os.path.join(path, *f)) for f in
                                              (("metadata.json",), ("data", "metadata.json"), ("data.index",)))
    if not os.path.exists(path) or (os.path.isdir(path) and not source_dir):
        return load_dataset(path, task)  # its one-line errors: no such file, a folder, ...
    fmt = detect_format(path)
    if fmt == "bremen":
        return load_dataset(path, task)
    horizon = getattr(resolve_task(task), "horizon", None) or 1000
    return import_any(path, fmt, task, horizon)
