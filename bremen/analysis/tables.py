"""The results table of run directories (``bremen table``): final and best return per algorithm, mean ± s.e.
and the 95 % bootstrap interval over seeds, and normalized scores.

One evaluation protocol for every algorithm. Without ``episodes`` the returns are the runs' own (summary.json:
``final_return`` is the last evaluation, ``best_return`` the highest of all evaluations, each the
deterministic policy on the real env for the run's evaluation budget; "best" is selected on those same
evaluations, so it is optimistic; a recursive run's final return is its last deployment's 10-episode
evaluation on shared env seeds). With ``episodes = N`` every finished run's exported ``policy_final/`` and
``policy_best/`` are evaluated again: the deterministic policy (the Gaussian's mean, the tanh-Gaussian's
mode, the argmax-Q choice), N full episodes, env seeds ``derived_seed(0, 4, i)`` for i < N — the same seeds
for every policy, algorithm and run (``bremen.evaluation.evaluate_policy``, as ``bremen evaluate``);
each result is kept in the run's ``reevaluations.json`` (see :func:`reevaluate`).

Normalized score = 100 · (return − zero) / (hundred − zero): zero is the task's uniform-random return
(docs/tasks.md) and hundred the behavior data's return of the run (``reference = "behavior"``, offline runs),
a number the user gives, or D4RL's reference scores (``reference = "d4rl"``: D4RL's random and expert
returns, for half_cheetah, hopper, walker2d and ant; bremen's rewards follow BREMEN's task definitions, close
to but not the same as the gym envs D4RL scored, so treat those as approximate).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from bremen.analysis.runs import RunRecord, group_runs
from bremen.analysis.stats import bootstrap_ci, mean_se, normalized
from bremen.errors import UserError
from bremen.io.atomic import atomic_path

# D4RL's REF_MIN_SCORE / REF_MAX_SCORE (random and expert policies on the -v2 gym envs)
D4RL_REFERENCES = {"half_cheetah": (-280.178953, 12135.0), "hopper": (-20.272305, 3234.3),
                   "walker2d": (1.629008, 4592.3), "ant": (-325.6, 3879.7)}
FORMATS = ("md", "csv", "latex")


REEVAL_FILE = "reevaluations.json"
REEVAL_PROTOCOL = "evaluate_policy(policy, task, episodes, seed=0): deterministic, env seeds derived_seed(0, 4, i)"


def _policy_digest(path: Path) -> str:
    h = hashlib.sha256()
    for name in ("policy.json", "policy.npz"):
        if (path / name).is_file():
            h.update((path / name).read_bytes())
    return h.hexdigest()


def reevaluate(run: RunRecord, which: str, episodes: int) -> Optional[float]:
    """Mean return of the run's exported ``policy_<which>/`` over ``episodes`` shared-seed episodes. Kept in
    the run's ``reevaluations.json`` with the policy files' sha256, so a table made again as more seeds
    finish evaluates only what is new (a re-exported policy is evaluated again)."""
    from bremen.io.policy_io import load_policy
    from bremen.evaluation import evaluate_policy
    from bremen.tasks import make

    path = run.path / f"policy_{which}"
    if not (path / "policy.json").is_file():
        return None
    cache_path, key, digest = run.path / REEVAL_FILE, f"{which}/{episodes}", _policy_digest(path)
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    except (OSError, ValueError):
        cache = {}
    cache = cache if isinstance(cache, dict) else {}
    hit = cache.get(key)
    if isinstance(hit, dict) and hit.get("policy_sha256") == digest and hit.get("protocol") == REEVAL_PROTOCOL:
        return float(hit["mean"])
    mean = float(evaluate_policy(load_policy(path), make(run.task), episodes, seed=0)["mean"])
    cache[key] = {"mean": mean, "episodes": episodes, "policy_sha256": digest, "protocol": REEVAL_PROTOCOL}
    try:
        with atomic_path(str(cache_path)) as tmp:
            Path(tmp).write_text(json.dumps(cache, indent=1) + "\n")
    except OSError:  # a read-only run directory: the table is still right, only not cached
        pass
    return mean


def own_return(run: RunRecord, which: str) -> Optional[float]:
    """A run's own final or best return: summary.json's, except that a recursive run's final return is its last
    deployment's 10-episode evaluation (deployments.csv ``final_return``, env seeds shared by every run)."""
    if which == "final" and run.script == "recursive" and run.deployments:
        return run.deployments[-1].get("final_return")
    return run.summary.get(f"{which}_return")  # bc_return: the BC policy a model-based run fitted (else None)


def _zero_hundred(runs: Sequence[RunRecord], reference: str):
    from bremen.tasks import make

    task = runs[0].task
    if reference == "d4rl":
        return D4RL_REFERENCES.get(task, (None, None))
    try:
        zero = make(task).random_return
    except Exception:
        zero = None
    if reference == "behavior":
        b = [r.summary.get("behavior_return") for r in runs if r.script == "offline"]
        return zero, (float(np.mean(b)) if b and None not in b else None)
    try:
        return zero, float(reference)
    except ValueError:
        raise UserError(f"--reference {reference!r} is not behavior, d4rl or a number (the return scored 100)")


def table_rows(runs: Sequence[RunRecord], episodes: int = 0, reference: str = "behavior", by: Sequence[str] = (),
               progress=None) -> list[dict]:
    """One row per (panel, line) of the finished runs: statistics of final and best returns over seeds."""
    rows = []
    for panel, lines in group_runs([r for r in runs if r.finished], by).items():
        for label, rs in lines.items():
            row = {"panel": panel, "algorithm": label, "seeds": len(rs), "seed_list": sorted(r.seed for r in rs),
                   "evaluation": f"{episodes} episodes, shared env seeds" if episodes else "the runs' own"}
            zero, hundred = _zero_hundred(rs, reference)
            row["zero"], row["hundred"] = zero, hundred
            for which in ("final", "best", "bc"):
                if episodes:
                    vals = [reevaluate(r, which, episodes) for r in rs]
                    done = sum(v is not None for v in vals)
                    if progress and done:
                        progress(f"{panel} {label} {which}: {done} policies evaluated")
                else:
                    vals = [own_return(r, which) for r in rs]
                vals = [v for v in vals if v is not None]
                if not vals:
                    continue
                m, se = mean_se(vals)
                lo, hi = bootstrap_ci(vals)
                row[which] = {"mean": m, "stderr": se, "ci95": None if lo is None else [float(lo), float(hi)],
                              "per_seed": vals}
                # a scale whose 100 is not above its 0 (data of random actions against the random return) has
                # no meaning: the columns show "-"
                if zero is not None and hundred is not None and hundred > zero:
                    row[which]["normalized"] = normalized(m, zero, hundred)
            rows.append(row)
    return rows


def _pm(stat: Optional[dict]) -> str:
    if not stat:
        return "-"
    return f"{stat['mean']:.1f}" + (f" ± {stat['stderr']:.1f}" if stat["stderr"] is not None else "")


def _ci(stat: Optional[dict]) -> str:
    return f"[{stat['ci95'][0]:.1f}, {stat['ci95'][1]:.1f}]" if stat and stat.get("ci95") else "-"


def _norm(stat: Optional[dict]) -> str:
    return f"{stat['normalized']:.1f}" if stat and "normalized" in stat else "-"


HEAD = ["runs", "algorithm", "seeds", "final (mean ± s.e.)", "final 95 % CI", "best (mean ± s.e.)", "best 95 % CI",
        "final normalized", "best normalized", "returns scored 0 / 100"]


def _refs(row: dict) -> str:
    """The returns the normalized columns score 0 and 100 (uniform-random actions and, by default, the behavior
    data's return), so that the table shows the data's return beside the algorithms'."""
    zero, hundred = row.get("zero"), row.get("hundred")
    return "-" if zero is None or hundred is None else f"{zero:.1f} / {hundred:.1f}"


def format_table(rows: Sequence[dict], fmt: str = "md") -> str:
    """The rows as a md, csv or latex table; a BC column (the BC policy of model-based runs) when any row has it."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    bc = any(r.get("bc") for r in rows)
    head = HEAD[:3] + ["BC (mean ± s.e.)"] * bc + HEAD[3:]
    cells = [[r["panel"], r["algorithm"], str(r["seeds"])] + [_pm(r.get("bc"))] * bc
             + [_pm(r.get("final")), _ci(r.get("final")), _pm(r.get("best")), _ci(r.get("best")),
                _norm(r.get("final")), _norm(r.get("best")), _refs(r)] for r in rows]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(head)
        w.writerows(cells)
        return buf.getvalue().rstrip("\n")
    if fmt == "latex":
        esc = lambda s: s.replace("±", r"$\pm$").replace("%", r"\%").replace("_", r"\_")
        lines = [r"\begin{tabular}{ll" + "r" * (len(head) - 2) + "}", r"\toprule",
                 " & ".join(esc(h) for h in head) + r" \\", r"\midrule"]
        lines += [" & ".join(esc(c) for c in row) + r" \\" for row in cells]
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
