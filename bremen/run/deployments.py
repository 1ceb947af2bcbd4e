"""Where each deployment's real data comes from: the run driver's two data plans.

``DatasetPlan`` (offline): one deployment whose batch is a fixed dataset (its first ``n_train`` transitions).
``CollectionPlan`` (recursive, ORIGINAL.md §2.2): deployment d collects ``batch_size`` real steps (d = 0:
uniform random actions, or the ``--data_path`` dataset as a warm start; later: the learner's current policy
with its sampling noise) and writes them once, atomically, as ``deployments/deployment_<d>.h5`` (the
project's dataset format). A resumed run reads the batches it already has, so it trains on exactly the same
arrays; a killed collection leaves nothing a resume would trust.

``OwnStepsPlan`` (online): one deployment and no data; the learner collects its own steps (online SAC).

Each plan gives the data so far after deployment d: every batch, their concatenation, what BC clones
(the latest batch, or all with ``all_bc``) and the dynamics model's 85/15 split (of each batch, in order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple, Optional

from bremen.data import load_dataset
from bremen.data.collect import collect
from bremen.data.dataset import concat, save_dataset
from bremen.data.importers import inferred_note, read_dataset
from bremen.errors import UserError
from bremen.evaluation import dataset_return, derived_seed
from bremen.run.config import RunConfig

DEPLOY_STREAM = 5  # derived_seed stream of the deployments' env resets and action noise
VAL_FRACTION = 0.15


class DataSoFar(NamedTuple):
    batches: list
    all: object
    """Every batch so far, concatenated (the learner's ``data``)."""
    bc: object
    train: object
    val: object


def split_batches(batches: list, all_bc: bool) -> DataSoFar:
    splits = [b.split(VAL_FRACTION, by="order") for b in batches]
    one = len(batches) == 1
    all_data = batches[0] if one else concat(batches)
    return DataSoFar(batches, all_data, all_data if all_bc else batches[-1],
                     splits[0][0] if one else concat([s[0] for s in splits]),
                     splits[0][1] if one else concat([s[1] for s in splits]))


class OwnStepsPlan:
    """Online: the learner collects its own steps; one deployment, no data given to it."""

    script = "online"
    data_label = "online"
    progress_keys: list = []
    reports_deployments = False

    def __init__(self, cfg: RunConfig, task, say: Callable[[str], None]):
        self.cfg, self.deployments = cfg, 1

    def check(self) -> None:
        pass

    def data_so_far(self, d: int, policy=None) -> DataSoFar:
        return DataSoFar([], None, None, None, None)

    def data_return(self, sofar: DataSoFar, horizon: int) -> Optional[dict]:
        return None

    def summary(self, data, behavior) -> dict:
        return {"dataset": None, "n_train": 0, "behavior_return": None}

    def progress_row(self, d: int, data, deployed) -> dict:
        return {}

    def export_meta(self, d: int, data) -> dict:
        return {}


class DatasetPlan:
    """Offline: one deployment, the dataset's first ``n_train`` transitions (see the module docstring)."""

    script = "offline"
    data_label = "behavior data"
    progress_keys: list = []
    reports_deployments = False

    def __init__(self, cfg: RunConfig, task, say: Callable[[str], None]):
        self.cfg, self.task, self.say = cfg, task, say
        self.deployments = 1
        self._data = None

    def check(self) -> None:
        """A missing dataset, or one that does not fit the task, is an error before anything is written."""
        c = self.cfg
        if not Path(c.data_path).is_file():
            raise UserError(f"dataset {c.data_path} not found; make it with: bremen collect --task {c.task} "
                            f"--noise {c.noise} --n {c.n_train} --out {c.data_path}")
        self.data_so_far(0)

    def data_so_far(self, d: int, policy=None) -> DataSoFar:
        if self._data is None:
            c = self.cfg
            ds = read_dataset(str(c.data_path), task=self.task)
            note = inferred_note(ds)
            if note:
                self.say(f"{c.data_path}: {note}; `bremen dataset convert` writes it in bremen's format")
            ds = ds.subsample(min(c.n_train, len(ds)), mode=c.subsample, seed=c.seed)
            self._data = split_batches([ds], all_bc=True)
        return self._data

    def data_return(self, sofar: DataSoFar, horizon: int) -> Optional[dict]:
        """The return of the latest batch's complete episodes (what the data's policy achieved)."""
        return dataset_return(sofar.batches[-1], horizon)

    def progress_row(self, d: int, data, deployed: dict) -> dict:
        return {}

    def export_meta(self, d: int, data) -> dict:
        """What an exported policy's metadata says about the data it learned from."""
        return {"dataset": str(self.cfg.data_path)}

    def summary(self, data, behavior: dict) -> dict:
        """summary.json's entries about the data."""
        return {"dataset": str(self.cfg.data_path), "n_train": len(data), "behavior_return": behavior["mean"]}


class CollectionPlan:
    """Recursive: ``deployments`` batches collected by the run itself (see the module docstring)."""

    script = "recursive"
    data_label = "deployment batch"
    progress_keys = ["deployment", "real_samples", "deployed_return"]
    reports_deployments = True

    def __init__(self, cfg: RunConfig, task, say: Callable[[str], None], progress: bool = True,
                 sampling_noise: Callable = lambda policy: None):
        self.cfg, self.task, self.say, self.progress = cfg, task, say, progress
        self.sampling_noise = sampling_noise
        """How a policy samples, for the batch's metadata (the learner's ``sampling_noise``)."""
        self.deployments = cfg.deployments
        self._batches: dict = {}

    def check(self) -> None:
        pass

    def path(self, d: int) -> Path:
        return Path(self.cfg.run_dir) / "deployments" / f"deployment_{d}.h5"

    def batch(self, d: int, policy: Callable):
        """Deployment ``d``'s batch: read back if written, else collected now (``policy()``: the learner's
        current policy) and written once. Training always sees the file's content."""
        if d in self._batches:
            return self._batches[d]
        path = self.path(d)
        if path.is_file():
            self._batches[d] = load_dataset(str(path), task=self.task)
            return self._batches[d]
        c = self.cfg
        if d == 0 and c.initial_data:  # a warm start: the given dataset is the first batch
            batch = read_dataset(c.initial_data, task=self.task)
            note = inferred_note(batch)
            self.say(f"deployment 0: the dataset {c.initial_data} ({len(batch)} transitions{'; ' + note if note else ''})")
            batch.metadata.update({"deployment": 0, "policy": f"dataset {c.initial_data}", "run_dir": str(c.run_dir)})
            return self._write(d, batch, policy)
        random = d == 0
        acting = None if random else policy()
        meta = {"deployment": d, "policy": "uniform random" if random else f"{c.algorithm} after deployment {d - 1}",
                "sampling_noise": None if random else self.sampling_noise(acting),
                "run_dir": str(c.run_dir)}
        self.say(f"deployment {d}: collecting {c.batch_size} real steps with "
                 f"{'uniform random actions' if random else 'the current policy'}")
        batch = collect(self.task, "random" if random else "pure", c.batch_size, acting,
                        derived_seed(c.seed, DEPLOY_STREAM, d), self.progress, meta)
        return self._write(d, batch, policy)

    def _write(self, d: int, batch, policy):
        path = self.path(d)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_dataset(batch, str(path))
        return self.batch(d, policy)

    def data_so_far(self, d: int, policy: Callable = None) -> DataSoFar:
        return split_batches([self.batch(i, policy) for i in range(d + 1)], self.cfg.all_bc)

    data_return = DatasetPlan.data_return

    def progress_row(self, d: int, data, deployed: dict) -> dict:
        return {"deployment": d, "real_samples": len(data), "deployed_return": deployed["mean"]}

    def summary(self, data, behavior: dict) -> dict:
        c = self.cfg
        return {**DatasetPlan.summary(self, data, behavior), "script": "recursive", "deployments": self.deployments,
                "batch_size": c.batch_size, "real_samples": len(data)}

    def export_meta(self, d: int, data) -> dict:
        return {"deployments": d + 1, "real_samples": len(data), "dataset": str(Path(self.cfg.run_dir) / "deployments")}
