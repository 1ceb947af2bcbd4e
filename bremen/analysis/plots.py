"""Learning curves of run directories (``bremen plot``): evaluation return against the outer iteration,
against the deployment and against the real samples, one line per algorithm (or per config value), the mean
over seeds with its 95 % bootstrap band, and the behavior data's and the random policy's returns as
reference lines. Headless matplotlib; the file type follows the extension (.png, .pdf, .svg).

What each axis reads:

* ``iteration``: progress.csv, ``episode_mean`` (the run's own evaluation after every outer iteration or
  chunk of updates) against ``Iteration``;
* ``deployment`` / ``samples`` (recursive runs): deployments.csv, ``final_return`` (the 10-episode
  evaluation every deployment ends with, on env seeds shared by every run) against the deployment index or
  the real samples collected so far.

Seeds of one line are cut to the evaluations they all have, so a run still going shortens its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from bremen.analysis.runs import RunRecord, group_runs
from bremen.analysis.stats import bootstrap_ci
from bremen.errors import UserError

AXES = {"iteration": "outer iteration (or chunk of updates)", "deployment": "deployment",
        "samples": "real samples"}
FORMATS = (".png", ".pdf", ".svg")


def curve(run: RunRecord, x: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, return) of one run for axis ``x``; empty arrays where the run has no such axis."""
    if x == "iteration":
        rows = [r for r in run.progress if r.get("episode_mean") is not None]
        return np.array([r["Iteration"] for r in rows]), np.array([r["episode_mean"] for r in rows])
    rows = [r for r in run.deployments if r.get("final_return") is not None]
    key = "deployment" if x == "deployment" else "real_samples"
    return np.array([r[key] for r in rows]), np.array([r["final_return"] for r in rows])


def line(runs: Sequence[RunRecord], x: str):
    """(x, mean, low, high, seeds) of one line: the seeds' common evaluations; None if they have none."""
    curves = [curve(r, x) for r in runs]
    curves = [c for c in curves if len(c[0])]
    if not curves:
        return None
    n = min(len(c[0]) for c in curves)
    xs = curves[0][0][:n]
    ys = np.stack([c[1][:n] for c in curves])
    low, high = bootstrap_ci(ys)
    return xs, ys.mean(axis=0), low, high, len(curves)


def references(runs: Sequence[RunRecord]) -> dict:
    """Reference returns of a panel: the behavior data's (offline runs that finished) and uniform random's."""
    out = {}
    behavior = [r.summary["behavior_return"] for r in runs if r.summary and r.script == "offline"
                and r.summary.get("behavior_return") is not None]
    if behavior:
        out["behavior data"] = float(np.mean(behavior))
    try:
        from bremen.tasks import make

        rnd = make(runs[0].task).random_return
    except Exception:  # a gymnasium id without a measured random return
        rnd = None
    if rnd is not None:
        out["random policy"] = float(rnd)
    return out


def default_axes(runs: Sequence[RunRecord]) -> list[str]:
    return ["deployment", "samples"] if all(r.script == "recursive" for r in runs) else ["iteration"]


def plot_runs(runs: Sequence[RunRecord], out: Path, axes: Optional[Sequence[str]] = None, by: Sequence[str] = (),
              title: Optional[str] = None) -> Path:
    """Write the learning-curve figure of ``runs`` to ``out``; returns the path."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise UserError(f"--out {out}: the file type must be one of {', '.join(FORMATS)}")
    axes = list(axes or default_axes(runs))
    for a in axes:
        if a not in AXES:
            raise UserError(f"--x {a!r} is not one of {', '.join(AXES)}")
    if any(a != "iteration" for a in axes) and not any(r.script == "recursive" for r in runs):
        raise UserError("--x deployment/samples needs recursive runs (deployments.csv); these are offline runs: "
                        "use --x iteration")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = group_runs(runs, by)
    # one row per panel and one column per axis; a single axis puts up to three panels side by side
    cols = len(axes) if len(axes) > 1 else min(3, len(panels))
    rows = -(-len(panels) * len(axes) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    cells = iter(grid.flat)
    for ax in list(grid.flat)[len(panels) * len(axes):]:
        ax.set_visible(False)
    colors = {}
    for panel, lines in panels.items():
        members = [r for rs in lines.values() for r in rs]
        for a, ax in zip(axes, cells):
            drawn = False
            for label, rs in lines.items():
                got = line(rs, a)
                if got is None:
                    continue
                xs, mean, low, high, n = got
                color = colors.setdefault(label, f"C{len(colors) % 10}")
                ax.plot(xs, mean, "o-" if len(xs) <= 12 else "-", color=color, ms=3.5,
                        label=f"{label} ({n} seed{'s' if n > 1 else ''})")
                if low is not None:
                    ax.fill_between(xs, low, high, color=color, alpha=0.2, lw=0)
                drawn = True
            for (name, value), style in zip(references(members).items(), ("--", ":")):
                ax.axhline(value, color="0.35", ls=style, lw=1, label=f"{name} ({value:.0f})")
            if not drawn:
                ax.text(0.5, 0.5, f"no {a} data", transform=ax.transAxes, ha="center", color="0.5")
            ax.set_title(panel, fontsize=10)
            ax.set_xlabel(AXES[a])
            ax.set_ylabel("return")
            ax.grid(alpha=0.3)
            if a == "samples":
                ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
            else:
                ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.legend(fontsize=7.5, loc="best")
    fig.suptitle(title or "mean over seeds, 95 % bootstrap band", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
