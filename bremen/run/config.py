"""What the run driver needs to know, typed: built from a resolved experiment by bremen.experiment.run_config,
the only place that reads the command line and param files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class RunConfig:
    script: str
    """offline (one deployment: the dataset), recursive (deployments collected by the run) or online (a
    learner that collects its own steps); a run directory is resumed only by the script that started it."""
    task: str
    seed: int
    preset: str
    algorithm: str
    label: str
    """The algorithm's name on progress bars and in tables (BREMEN, ME-TRPO, BRAC primal, ...)."""
    run_dir: Path
    settings: dict
    """The resolved experiment as params.json holds it; a resumed run must match it."""
    resume_free_keys: tuple = ()
    """Settings (params.json keys) a resume may change: offline ``flags.onpol_iters`` trains a run further."""
    # ---- evaluation, logs and exports
    eval_steps: int = 1000
    """Real steps per evaluation (whole deterministic episodes, at least this many)."""
    eval_model: bool = False
    """Also log the ensemble's one-step error on the evaluation's transitions (step_wise_mse)."""
    save_variables: bool = False
    """Export policy_iter<i> every 100 outer iterations and after the last."""
    eval_episodes: Optional[int] = None
    """Evaluate exactly this many episodes instead (online SAC's protocol)."""
    eval_target: Optional[float] = None
    """Export ``partial_target`` at the first of two consecutive evaluations whose mean reaches this."""
    stop_at_target: bool = False
    """End training once ``partial_target`` is exported."""
    dir_flag: str = "--log_dir"
    """The flag that chose ``run_dir`` (for the one-line errors)."""
    video_dir: Optional[str] = None
    outer_iterations: int = 1
    """The original's onpol_iters: outer iterations of the whole run (offline: of the dataset)."""
    # ---- the data: offline
    data_path: Path = Path()
    noise: str = "pure"
    n_train: int = 0
    """Offline: transitions of the dataset to train on."""
    subsample: str = "prefix"
    # ---- the data: recursive
    deployments: int = 1
    batch_size: int = 0
    """Real steps collected per deployment."""
    all_bc: bool = False
    """BC clones every batch so far instead of the latest."""
    initial_data: Optional[str] = None
    """A dataset that is deployment 0's batch instead of uniform-random actions."""
