"""Several seeds of one model-free baseline trained as one compiled program (``offline.py --vmap_seeds``).

Each seed keeps its own run (bremen.run.driver.Run, whose steps this runs): its run directory, logs, evaluations,
exports, checkpoints and ``--resume``. Only the updates are shared: the seeds' agent states are stacked
on a leading axis and every chunk of updates is one ``jax.vmap``-ed call (bremen.learners.actor_critic.
fit_seeds), with minibatches drawn on the device from each seed's own key. A run's results equal those of
the same seed run alone up to float rounding.
"""

from __future__ import annotations

import numpy as np

from bremen.algos import registry
from bremen.errors import UserError
from bremen.learners.actor_critic import fit_seeds

DATA_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals")


def same_data(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(getattr(a, f), getattr(b, f)) for f in DATA_FIELDS)


def check_vmappable(algorithms) -> None:
    """One line (UserError) unless ``algorithms`` (one per seed) name a model-free baseline."""
    name = algorithms[0]
    if name not in registry.MODEL_FREE:
        raise UserError(f"--vmap_seeds trains the seeds of a model-free baseline ({', '.join(registry.MODEL_FREE)}) "
                        f"as one program; {name} runs its seeds one after another (drop --vmap_seeds)")


def run_seeds_together(runs) -> list[dict]:
    """Run ``runs`` (offline Runs of one model-free agent, one per seed) with shared vmapped updates; returns
    their summaries in order. The driver's own steps around the one shared fit: begin, the deployment's
    start and end, the end."""
    check_vmappable([r.cfg.algorithm for r in runs])
    starts = []
    for i, r in enumerate(runs):
        r.bar_position = i
        phase, start, first = r.begin()
        r.start_deployment(first, phase, start)
        starts.append(start)
    data = [runs[0].data]
    for r in runs[1:]:  # one device copy when the seeds train on the same transitions
        data.append(data[0] if same_data(r.data, runs[0].data) else r.data)
    try:
        fit_seeds([r.learner for r in runs], data, runs, starts)
    finally:
        for r in runs:
            r.tb.close()
    for r in runs:
        r.end_deployment(0)
    return [r.end() for r in runs]
