"""Checkpoints: one ``.npz`` file of named arrays plus a JSON document, written atomically.

A checkpoint is written to a temporary file beside its destination, flushed to disk, then renamed onto
it (``os.replace``), so a run killed at any moment leaves either the previous checkpoint or the new one,
never a partial file. JAX pytrees (agent states) are stored leaf by leaf under their tree paths and
restored into a template of the same structure, so no pickling is involved.
"""

from __future__ import annotations

import json

import jax
import numpy as np

from bremen.io.atomic import atomic_path

META_KEY = "__meta_json__"
CHECKPOINT_FILE = "checkpoint.npz"
"""A run directory's checkpoint."""


def save_checkpoint(path, arrays: dict, meta: dict) -> None:
    """Write ``arrays`` (name → array) and ``meta`` (JSON-serialisable) to ``path`` atomically."""
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload[META_KEY] = np.frombuffer(json.dumps(meta).encode(), np.uint8)

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **payload)


def load_checkpoint(path) -> tuple[dict, dict]:
    """(arrays, meta) of a checkpoint written by :func:`save_checkpoint`."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != META_KEY}
        meta = json.loads(z[META_KEY].tobytes().decode())
    return arrays, meta


def pytree_to_arrays(tree, prefix: str) -> dict:
    """Leaves of ``tree`` as NumPy arrays named ``prefix/<tree path>``."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {f"{prefix}/{jax.tree_util.keystr(p)}": np.asarray(v) for p, v in leaves}


def arrays_to_pytree(template, arrays: dict, prefix: str):
    """Rebuild a pytree shaped like ``template`` from arrays written by :func:`pytree_to_arrays`."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for p, ref in paths:
        name = f"{prefix}/{jax.tree_util.keystr(p)}"
        if name not in arrays:
            raise KeyError(f"checkpoint lacks {name}")
        a = arrays[name]
        if a.shape != np.shape(ref):
            raise ValueError(f"checkpoint {name} has shape {a.shape}, expected {np.shape(ref)}")
        leaves.append(jax.numpy.asarray(a, dtype=np.asarray(ref).dtype))
    return jax.tree_util.tree_unflatten(treedef, leaves)
