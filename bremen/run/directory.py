"""The run directory: what a new run may start in, what a resumed run must match.

A run lives in one directory. A new run refuses a directory that holds another run unless ``--force``;
``--resume`` continues from ``checkpoint.npz`` (written atomically after every phase and outer iteration,
holding the learner's arrays and the run's counters); a run stopped before its first checkpoint is
started over (bremen.run.driver).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bremen.errors import UserError
from bremen.io.checkpoint import CHECKPOINT_FILE as CHECKPOINT
from bremen.io.paths import writable_dir

CONFIG_FILE = "params.json"


def prepare_run_dir(run_dir: Path, resume: bool, force: bool, what: str = "run directory (--log_dir)",
                    elsewhere: str = "--exp_name/--log_dir") -> bool:
    """Check ``run_dir`` for a new or resumed run and make sure it is writable; returns whether to resume.
    ``what`` and ``elsewhere`` name the flags that chose the directory, for the one-line errors."""
    ckpt = run_dir / CHECKPOINT
    if resume and force:
        raise UserError("--resume and --force contradict each other; give one of them")
    if resume and not ckpt.exists():
        if run_dir.exists() and any(run_dir.iterdir()):
            if not (run_dir / CONFIG_FILE).is_file():
                raise UserError(f"--resume: {run_dir} has no {CHECKPOINT} and is not a bremen run directory; "
                                f"nothing to resume (start without --resume)")
            # a run stopped before its first checkpoint (the model fit): its partial logs are redone
            shutil.rmtree(run_dir)
        resume = False
    if resume:
        remove_partial_writes(run_dir)
    if not resume and run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            raise UserError(f"run directory {run_dir} already exists; pass --resume to continue it, "
                            f"--force to start over, or choose another {elsewhere}")
        shutil.rmtree(run_dir)
    writable_dir(run_dir, what)
    return resume


def remove_partial_writes(run_dir: Path) -> None:
    """What a killed process's atomic writes leave behind: their temporary files and directories (``.NAME.<hex>.tmp``,
    bremen.io.atomic and save_policy) and a replaced policy directory (``.NAME.<hex>.old``). The destinations
    themselves are whole; the resumed run redoes the step whose write was cut."""
    for leftover in sorted(run_dir.rglob(".*.tmp")) + sorted(run_dir.rglob(".*.old")):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        elif leftover.exists():
            leftover.unlink()


# Settings a resumed run may change: where the run lives and how the command named it or its sibling seeds.
RESUME_FREE_KEYS = frozenset({"run_dir", "flags.random_seeds", "flags.exp_name", "flags.sub_exp_name",
                              "flags.video_dir"})
# Changes named first in the message: they say which run the directory holds.
RESUME_FIRST_KEYS = ("flags.algorithm", "task", "data_path", "seed", "preset")


def changed_settings(stored: dict, current: dict, free=RESUME_FREE_KEYS, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between a checkpoint's settings and the current ones (both as
    params.json writes them), as "key: stored -> current", outside ``free``; RESUME_FIRST_KEYS first. Keys
    on one side only are a field added or dropped by another bremen version (a new field's default keeps
    the old behaviour), not a change."""
    if not prefix:  # compare as params.json holds them (tuples as lists)
        current = json.loads(json.dumps(current))
    out = []
    for key in sorted(set(stored) & set(current)):
        name = f"{prefix}{key}"
        if name in free:
            continue
        a, b = stored[key], current[key]
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_settings(a, b, free, name + ".")
        elif a != b:
            out.append(f"{name}: {json.dumps(a)} -> {json.dumps(b)}")
    rank = {k: i for i, k in enumerate(RESUME_FIRST_KEYS)}
    return sorted(out, key=lambda line: rank.get(line.split(":")[0], len(rank)))


def check_same_settings(run_dir: Path, stored: dict, current: dict, also_free=()) -> None:
    """A resume must train under the settings its checkpoint was written with (else the run mixes two
    configurations): a one-line UserError naming the first changed keys. ``also_free``: keys the loop lets a
    resume change (offline: ``flags.onpol_iters``, to train a run further)."""
    changed = changed_settings(stored, current, RESUME_FREE_KEYS | set(also_free))
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise UserError(f"--resume: {run_dir} was started with other settings ({'; '.join(changed[:3])}{more}); "
                        f"resume it with the flags in its {CONFIG_FILE}, or start a new run (another "
                        f"--log_dir, or --force)")
