"""A local Minari dataset (§E.3) as a :class:`~bremen.data.dataset.Dataset`, read without the minari package:
the HDF5 backend with h5py, the Arrow and Parquet backends with pyarrow."""

from __future__ import annotations

import json
import os
import re

import h5py
import numpy as np

from bremen.data.dataset import Dataset, open_hdf5, resolve_task
from bremen.errors import UserError


def minari_data_dir(path: str) -> str:
    """The ``data/`` folder of a Minari dataset given as that folder, the dataset folder above it, its
    ``main_data.hdf5``, or a dataset id under ``$MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``)."""
    path = os.fspath(path)
    if os.path.isfile(path) and os.path.basename(path) == "main_data.hdf5":
        path = os.path.dirname(path)
    root = os.environ.get("MINARI_DATASETS_PATH") or os.path.join(os.path.expanduser("~"), ".minari", "datasets")
    for candidate in (path, os.path.join(path, "data"), os.path.join(root, path, "data")):
        if os.path.isfile(os.path.join(candidate, "metadata.json")):
            return candidate
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file, folder or Minari dataset id under {root}; check the path")
    raise UserError(
        f"{path}: not a Minari dataset (no metadata.json in it or in {os.path.join(path, 'data')}); "
        f"give the dataset folder that holds data/metadata.json"
    )


def _box_shape(space_json: str, what: str, source: str) -> tuple:
    space = json.loads(space_json) if isinstance(space_json, str) else space_json
    kind = space.get("type") if isinstance(space, dict) else None
    if kind != "Box" or len(space.get("shape", ())) > 1:
        shape = f" of shape {tuple(space['shape'])}" if kind == "Box" else ""
        raise UserError(
            f"{source}: {what} space is {kind}{shape}, unsupported; bremen imports flat Box spaces only"
        )
    return tuple(space["shape"])


MINARI_KEYS = ("observations", "actions", "rewards", "terminations", "truncations")


def _minari_hdf5_episodes(data_dir: str):
    """(where, {key: array}) per episode of the HDF5 backend: groups ``episode_<id>`` of ``main_data.hdf5``."""
    main = os.path.join(data_dir, "main_data.hdf5")
    with open_hdf5(main) as f:
        names = sorted((n for n in f if re.fullmatch(r"episode_\d+", n)), key=lambda n: int(n.split("_")[1]))
        for name in names:
            ep = f[name]
            for key in MINARI_KEYS:
                if not isinstance(ep.get(key), h5py.Dataset):
                    raise UserError(f"{main}: episode group '{name}' has no '{key}' dataset; the dataset is damaged")
            yield f"{main}: '{name}'", {key: ep[key][()] for key in MINARI_KEYS}


def _minari_arrow_episodes(data_dir: str, backend: str):
    """(where, {key: array}) per episode of the Arrow or Parquet backend: one folder per episode id holding
    record batches whose columns are padded to N+1 rows (the last row of the step columns is a dummy, dropped)."""
    try:
        import pyarrow.dataset as pds
    except ImportError:
        raise UserError(
            f"{data_dir}: this Minari dataset uses the {backend} backend, which needs pyarrow (not installed): "
            f"pip install pyarrow, or recreate the dataset with data_format='hdf5'"
        ) from None
    ids = sorted(int(n) for n in os.listdir(data_dir) if n.isdigit() and os.path.isdir(os.path.join(data_dir, n)))
    for i in ids:
        folder = os.path.join(data_dir, str(i))
        table = pds.dataset(folder, format=backend, ignore_prefixes=["_", ".", "metadata.json"]).to_table()
        missing = [k for k in MINARI_KEYS if k not in table.column_names]
        if missing:
            raise UserError(f"{folder}: episode {i} has no '{missing[0]}' column; the dataset is damaged")
        ep = {key: _arrow_column(table[key], table.num_rows) for key in MINARI_KEYS}
        ep.update({key: ep[key][:-1] for key in MINARI_KEYS[1:]})
        yield f"{folder}: episode {i}", ep


def _arrow_column(column, rows: int) -> np.ndarray:
    """A column as a numpy array; fixed-size lists (Box values) become ``[rows, size]``."""
    column = column.combine_chunks()
    if hasattr(column, "flatten"):
        return column.flatten().to_numpy(zero_copy_only=False).reshape(rows, -1)
    return column.to_numpy(zero_copy_only=False)


def import_minari(path: str, task=None) -> Dataset:
    """A local Minari dataset as a Dataset, without the ``minari`` package.

    Episodes, in id order, are ``episode_<id>`` groups of ``main_data.hdf5`` (HDF5 backend) or ``<id>/``
    folders of record batches (Arrow and Parquet backends, need pyarrow), each with ``observations`` (N+1 rows: the
    initial and the final observation), ``actions``, ``rewards``, ``terminations``, ``truncations`` (N rows).
    Transitions are ``observations[:-1] -> observations[1:]``, so a truncated episode keeps its last transition.
    A step with both flags is a terminal; an episode's last step with neither flag becomes a timeout. Only flat
    Box observation and action spaces are supported. ``task`` defaults to the env id in ``env_spec``; the
    Minari metadata is kept as ``source_metadata/<key>``.
    """
    data_dir = minari_data_dir(path)
    meta_path = os.path.join(data_dir, "metadata.json")
    try:
        with open(meta_path) as fh:
            meta = json.load(fh)
    except ValueError as e:
        raise UserError(f"{meta_path}: not valid JSON ({e}); the Minari dataset is damaged")
    backend = meta.get("data_format", "hdf5")
    if backend not in ("hdf5", "arrow", "parquet"):
        raise UserError(
            f"{data_dir}: Minari data format '{backend}' is unsupported; bremen reads the hdf5, arrow and "
            f"parquet backends: recreate the dataset with data_format='hdf5'"
        )
    obs_dim = int(np.prod(_box_shape(meta.get("observation_space", "{}"), "observation", data_dir)))
    act_dim = int(np.prod(_box_shape(meta.get("action_space", "{}"), "action", data_dir)))
    episodes = _minari_hdf5_episodes(data_dir) if backend == "hdf5" else _minari_arrow_episodes(data_dir, backend)
    parts = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}
    for where, ep in episodes:
        steps = len(ep["rewards"])
        obs = ep["observations"].reshape(len(ep["observations"]), -1)
        if len(obs) != steps + 1 or obs.shape[1] != obs_dim:
            raise UserError(f"{where}: observations of shape {ep['observations'].shape} for {steps} steps, expected "
                            f"({steps + 1}, {obs_dim})")
        actions = ep["actions"].reshape(len(ep["actions"]), -1)
        if actions.shape != (steps, act_dim):
            raise UserError(f"{where}: actions of shape {ep['actions'].shape}, expected ({steps}, {act_dim})")
        term = ep["terminations"].astype(bool)
        trunc = ep["truncations"].astype(bool) & ~term
        trunc[-1:] |= ~term[-1:]
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(actions)
        parts["rewards"].append(ep["rewards"])
        parts["terminals"].append(term)
        parts["timeouts"].append(trunc)
    if not parts["rewards"]:
        raise UserError(f"{data_dir}: no episodes; the Minari dataset is empty")
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    env_id = json.loads(meta["env_spec"]).get("id") if isinstance(meta.get("env_spec"), str) else None
    metadata = {f"source_metadata/{k}": v for k, v in meta.items() if isinstance(v, (str, int, float, bool))}
    metadata.update({"source_format": "minari", "source": meta.get("dataset_id", os.path.basename(data_dir))})
    task = resolve_task(task)
    if task is not None or env_id:
        metadata["task"] = task.name if task is not None else env_id
    return Dataset.from_arrays(arrays, metadata, data_dir, task)
