"""The one on-disk dataset format: flat transition arrays with the D4RL key layout, plus metadata.

A file is HDF5 with exactly the datasets ``observations, actions, rewards, next_observations, terminals,
timeouts`` (the keys of D4RL's gym-mujoco v1/v2 files, so D4RL, d3rlpy and CORL users read it unchanged) and
the metadata as root attributes. Rows are transitions in collection order; an episode ends at a row whose
``terminals`` or ``timeouts`` flag is set, and the last row always ends one. ``terminals`` is a true
environment termination (no bootstrap from ``next_observations``); ``timeouts`` is any other cut (time limit,
a collection block boundary, a subsample boundary). A row never has both. Within an episode
``next_observations[t] == observations[t + 1]``. See docs/datasets-format.md.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import h5py
import numpy as np

from bremen import __version__
from bremen.errors import UserError
from bremen.io.atomic import atomic_path

KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
FLOAT_KEYS = ("observations", "actions", "rewards", "next_observations")
FLAG_KEYS = ("terminals", "timeouts")
RANKS = {"observations": 2, "actions": 2, "rewards": 1, "next_observations": 2, "terminals": 1, "timeouts": 1}
SHAPES = {1: "[N]", 2: "[N, dim]"}
JSON_ATTRS = "bremen_json_attrs"
"""Root attribute listing the metadata keys stored as JSON text (values that are not a str, int, float or bool)."""


@dataclass
class Dataset:
    """Transitions in collection order. Build one from raw arrays with :meth:`from_arrays` (casts and validates)."""

    observations: np.ndarray  # [N, obs_dim] float32
    actions: np.ndarray  # [N, act_dim] float32
    rewards: np.ndarray  # [N] float32
    next_observations: np.ndarray  # [N, obs_dim] float32
    terminals: np.ndarray  # [N] bool: true environment termination after step t (no bootstrap)
    timeouts: np.ndarray  # [N] bool: episode cut after step t (time limit, block boundary); never also terminal
    metadata: dict = field(default_factory=dict)
    """task, source_policy, policy_return, noise, seed, bremen_version, created (ISO time), and anything else."""

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], metadata: Optional[dict] = None, source: str = "arrays",
                    task=None) -> "Dataset":
        """Cast float arrays to float32 and flags to bool, then :func:`validate` (errors name ``source``)."""
        missing = [k for k in KEYS if k not in arrays]
        if missing:
            raise UserError(f"{source}: missing {', '.join(missing)}; a dataset needs {', '.join(KEYS)}")
        cast = {k: np.asarray(arrays[k], np.float32) for k in FLOAT_KEYS}
        cast.update({k: np.asarray(arrays[k]).astype(bool) for k in FLAG_KEYS})
        validate(cast, source, task)
        return cls(**cast, metadata=dict(metadata or {}))

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def obs_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    def arrays(self) -> dict:
        """The six arrays by key, in :data:`KEYS` order."""
        return {k: getattr(self, k) for k in KEYS}

    def _end_mask(self) -> np.ndarray:
        ends = self.terminals | self.timeouts
        ends[-1:] = True
        return ends

    def episode_ends(self) -> np.ndarray:
        """Index of the last row of each episode (a terminal or timeout row, or the data's last row)."""
        return np.flatnonzero(self._end_mask())

    def episodes(self) -> list[slice]:
        """One slice of rows per episode, in order."""
        ends = self.episode_ends() + 1
        starts = np.concatenate([[0], ends[:-1]])
        return [slice(int(s), int(e)) for s, e in zip(starts, ends)]

    def next_actions(self) -> tuple[np.ndarray, int]:
        """The action taken at each row's next state (BRAC's ``a2``) where the next row continues the episode
        (no terminal or timeout, and its observation is this row's next observation); elsewhere the row's own
        action stands in (at a terminal it is never used). Returns (next actions, rows stood in)."""
        nxt = self.actions.copy()
        cont = ~self._end_mask()
        cont[:-1] &= np.all(self.next_observations[:-1] == self.observations[1:], axis=1)
        rows = np.flatnonzero(cont)
        nxt[rows] = self.actions[rows + 1]
        return nxt, int(len(self) - len(rows))

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of each episode (float64). A partial episode counts only its rows."""
        if len(self) == 0:
            return np.zeros(0)
        starts = np.array([s.start for s in self.episodes()])
        return np.add.reduceat(self.rewards.astype(np.float64), starts)

    def select(self, rows: np.ndarray, metadata: Optional[dict] = None) -> "Dataset":
        """The given rows (strictly increasing indices) as a new dataset.

        A selected row that did not end an episode and whose successor is not selected ends one now, as a
        timeout: episodes of the result are the maximal runs of consecutive source rows of one source
        episode, so ``next_observations[t] == observations[t + 1]`` still holds within every episode.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) > 1 and np.any(np.diff(rows) <= 0):
            raise ValueError("rows must be strictly increasing")
        successor_kept = np.zeros(len(rows), bool)
        successor_kept[:-1] = rows[1:] == rows[:-1] + 1
        cut = ~self._end_mask()[rows] & ~successor_kept
        return Dataset(
            observations=self.observations[rows],
            actions=self.actions[rows],
            rewards=self.rewards[rows],
            next_observations=self.next_observations[rows],
            terminals=self.terminals[rows],
            timeouts=self.timeouts[rows] | cut,
            metadata=dict(self.metadata if metadata is None else metadata),
        )

    def subsample(self, n: int, mode: str = "prefix", seed: int = 0) -> "Dataset":
        """At most ``n`` rows (all rows when ``n >= len(self)``, as the original's ``min(n_train, size)``).

        - ``prefix``: the first ``n`` rows, what BRAC and the original BREMEN do with ``n_train``. On BRAC mixtures this is the random-action block first.
        - ``uniform``: ``n`` distinct rows drawn uniformly with ``seed``, kept in source order.
        - ``episodes``: whole episodes drawn in random order with ``seed`` until at least ``n`` rows are taken
          (so up to one episode more than ``n``), kept in source order.

        Rows keep their flags; a row whose episode continues past the selection becomes a timeout (see
        :meth:`select`). The metadata records ``subsample = {n, mode, seed, of}``.
        """
        if n <= 0:
            raise UserError(f"subsample size must be positive, got {n}")
        total = len(self)
        info = {"subsample": {"n": int(n), "mode": mode, "seed": int(seed), "of": total}}
        rng = np.random.default_rng(seed)
        if mode == "prefix":
            rows = np.arange(min(n, total))
        elif mode == "uniform":
            rows = np.sort(rng.choice(total, size=min(n, total), replace=False))
        elif mode == "episodes":
            eps = self.episodes()
            order = rng.permutation(len(eps))
            lengths = np.array([eps[i].stop - eps[i].start for i in order])
            count = int(np.searchsorted(np.cumsum(lengths), min(n, total))) + 1
            rows = np.concatenate([np.arange(eps[i].start, eps[i].stop) for i in np.sort(order[:count])])
        else:
            raise UserError(f"unknown subsample mode {mode!r}; use prefix, uniform or episodes")
        return self.select(rows, {**self.metadata, **info})

    def split(self, val_fraction: float = 0.15, by: str = "order", seed: int = 0) -> tuple["Dataset", "Dataset"]:
        """(train, validation).

        - ``order``: the last ``round(val_fraction * N)`` rows are validation, the rest train, no shuffling: the
          original's sequential 85/15 split. The train part's last row becomes a
          timeout when it cuts an episode.
        - ``episodes``: whole episodes, drawn in random order with ``seed``, go to validation until it holds at
          least ``val_fraction * N`` rows; both parts keep source order.
        """
        if not 0.0 < val_fraction < 1.0:
            raise UserError(f"validation fraction must be strictly between 0 and 1, got {val_fraction}")
        total = len(self)
        if by == "order":
            n_train = total - int(round(val_fraction * total))
            val_mask = np.arange(total) >= n_train
        elif by == "episodes":
            eps = self.episodes()
            order = np.random.default_rng(seed).permutation(len(eps))
            lengths = np.array([eps[i].stop - eps[i].start for i in order])
            count = int(np.searchsorted(np.cumsum(lengths), val_fraction * total)) + 1
            val_mask = np.zeros(total, bool)
            for i in order[:count]:
                val_mask[eps[i]] = True
        else:
            raise UserError(f"unknown split {by!r}; use order or episodes")
        if val_mask.all() or not val_mask.any():
            raise UserError(
                f"cannot split {total} rows ({len(self.episodes())} episodes) by {by} with validation fraction "
                f"{val_fraction}: one part would be empty; use more data or another fraction"
            )
        info = {"val_fraction": float(val_fraction), "by": by, "seed": int(seed)}
        train = self.select(np.flatnonzero(~val_mask), {**self.metadata, "split": {"part": "train", **info}})
        val = self.select(np.flatnonzero(val_mask), {**self.metadata, "split": {"part": "validation", **info}})
        return train, val


def concat(parts: Sequence[Dataset]) -> Dataset:
    """Rows of ``parts`` one after the other; each part's last row ends an episode (a timeout if unflagged).

    The metadata keeps the keys on which all parts agree and lists every part's metadata with its row
    count under ``parts`` (e.g. the blocks of a BRAC-style mixture).
    """
    if not parts:
        raise ValueError("concat needs at least one dataset")
    dims = {(p.obs_dim, p.act_dim) for p in parts}
    if len(dims) > 1:
        raise UserError(f"cannot concatenate datasets with different (obs_dim, act_dim): {sorted(dims)}")
    arrays = {k: np.concatenate([getattr(p, k) for p in parts]) for k in KEYS}
    last_rows = np.cumsum([len(p) for p in parts]) - 1
    arrays["timeouts"][last_rows] |= ~arrays["terminals"][last_rows]
    first = parts[0].metadata
    common = {k: v for k, v in first.items() if all(k in p.metadata and p.metadata[k] == v for p in parts)}
    common.pop("created", None)
    common["parts"] = [{"rows": len(p), **p.metadata} for p in parts]
    return Dataset(**arrays, metadata=common)


def resolve_task(task):
    """A Task from a Task, a task name or None (then None)."""
    if task is None or not isinstance(task, str):
        return task
    from bremen.tasks import make

    return make(task)


def validate(arrays: Mapping[str, np.ndarray], source: str, task=None) -> None:
    """Check the six arrays of one dataset; raise :class:`UserError` naming ``source`` for the first problem.

    Checks, in order: ranks, dtypes (float32 / bool), equal lengths, non-empty, observation dims equal,
    dims against ``task`` (a Task or task name), finite values, and no row that is both terminal and timeout.
    """
    for k in KEYS:
        a = arrays[k]
        if a.ndim != RANKS[k]:
            fix = (f"import the file instead, which squeezes [N, 1] columns: bremen dataset convert {source} OUT.h5 "
                   f"--format d4rl" if a.ndim == 2 and a.shape[1] == 1 else "rewrite it with that shape")
            raise UserError(f"{source}: '{k}' has shape {a.shape}, expected {SHAPES[RANKS[k]]}; {fix}")
    for k in KEYS:
        want = np.float32 if k in FLOAT_KEYS else np.bool_
        if arrays[k].dtype != want:
            raise UserError(
                f"{source}: '{k}' has dtype {arrays[k].dtype}, expected {np.dtype(want)}; "
                f"import the file instead: bremen dataset convert {source} OUT.h5 --format d4rl"
            )
    lengths = {k: len(arrays[k]) for k in KEYS}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k} {n}" for k, n in lengths.items())
        raise UserError(f"{source}: arrays have different lengths ({listed}); every key needs one row per transition")
    if lengths["rewards"] == 0:
        raise UserError(f"{source}: the dataset is empty (0 transitions); collect or import some data first")
    obs_dim, next_dim = arrays["observations"].shape[1], arrays["next_observations"].shape[1]
    if obs_dim != next_dim:
        raise UserError(
            f"{source}: observations have {obs_dim} dims but next_observations {next_dim}; both must match"
        )
    task = resolve_task(task)
    act_dim = arrays["actions"].shape[1]
    if task is not None and (obs_dim, act_dim) != (task.obs_dim, task.act_dim):
        raise UserError(
            f"{source}: obs_dim {obs_dim} and act_dim {act_dim} do not match task '{task.name}' "
            f"(obs_dim {task.obs_dim}, act_dim {task.act_dim}); pass the task the data was collected on"
        )
    for k in FLOAT_KEYS:
        a = arrays[k]
        bad = ~np.isfinite(a)
        if bad.ndim > 1:
            bad = bad.any(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise UserError(
                f"{source}: '{k}' has non-finite values (NaN or inf) in {_rows(len(rows))}, first at row "
                f"{rows[0]}; drop or repair those rows"
            )
    both = np.flatnonzero(arrays["terminals"] & arrays["timeouts"])
    if len(both):
        raise UserError(
            f"{source}: {_rows(len(both))} {'has' if len(both) == 1 else 'have'} both 'terminals' and 'timeouts' "
            f"set, first at row {both[0]}; "
            f"a step is a termination or a cut, not both: bremen dataset convert {source} OUT.h5 --format d4rl "
            f"keeps the terminal"
        )


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _attr_value(value):
    """A metadata value as stored: numpy scalars and arrays become plain Python values, bytes become str."""
    if isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value


def write_metadata(f: h5py.File, metadata: Mapping[str, Any]) -> None:
    """Root attributes: str/int/float/bool as themselves, anything else JSON-serializable as JSON text."""
    as_json = []
    for key, value in metadata.items():
        value = _attr_value(value)
        if isinstance(value, (str, bool, int, float)):
            f.attrs[key] = value
            continue
        try:
            f.attrs[key] = json.dumps(value)
        except TypeError as e:
            raise TypeError(f"metadata[{key!r}] is not JSON-serializable: {e}") from None
        as_json.append(key)
    f.attrs[JSON_ATTRS] = json.dumps(as_json)


def read_metadata(f: h5py.File, source: str) -> dict:
    """Root attributes back as metadata (inverse of :func:`write_metadata`; other attributes kept as read)."""
    metadata = {k: _attr_value(v) for k, v in f.attrs.items()}
    try:
        as_json = json.loads(metadata.pop(JSON_ATTRS, "[]"))
        for key in as_json:
            metadata[key] = json.loads(metadata[key])
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{source}: unreadable metadata attribute ({e}); the file was not written by bremen intact")
    return metadata


def save_dataset(ds: Dataset, path: str) -> None:
    """Write ``ds`` to ``path`` atomically: a temporary file in the same folder, fsync, then ``os.replace``.

    A crash or error leaves any earlier file at ``path`` untouched and no partial file there. Fills in
    ``bremen_version`` and ``created`` (UTC, ISO 8601) when the metadata lacks them. Validates first.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{path}: folder {folder} does not exist; create it first")
    validate(ds.arrays(), path)
    metadata = {
        "bremen_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **ds.metadata,
    }
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w-") as f:
            for k, a in ds.arrays().items():
                f.create_dataset(k, data=a)
            write_metadata(f, metadata)


def open_hdf5(path: str) -> h5py.File:
    """Open ``path`` read-only; a missing, unreadable or non-HDF5 file is a :class:`UserError`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file; check the path")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder, not an HDF5 dataset file; give the .h5/.hdf5 file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        reason = str(e).split("(")[-1].rstrip(")") if "(" in str(e) else str(e)
        raise UserError(f"{path}: not a readable HDF5 file ({reason}); check that it is a complete .h5/.hdf5 file")


def load_dataset(path: str, task=None) -> Dataset:
    """Read and validate a bremen dataset file; ``task`` (a Task or name) also checks the dims."""
    path = os.fspath(path)
    with open_hdf5(path) as f:
        missing = [k for k in KEYS if not isinstance(f.get(k), h5py.Dataset)]
        if missing:
            found = ", ".join(sorted(f.keys())) or "nothing"
            raise UserError(
                f"{path}: missing key {', '.join(map(repr, missing))} (found: {found}); a bremen dataset has "
                f"{', '.join(KEYS)}; "
                f"for a D4RL-style file use: bremen dataset convert {path} OUT.h5 --format d4rl"
            )
        try:
            arrays = {k: f[k][()] for k in KEYS}
        except OSError as e:
            raise UserError(f"{path}: cannot read the arrays ({e}); the file is damaged, write it again")
        metadata = read_metadata(f, path)
    validate(arrays, path, task)
    return Dataset(**arrays, metadata=metadata)
