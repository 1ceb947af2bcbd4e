"""Statistics over seeds: mean, standard error and the percentile-bootstrap confidence interval of the mean.

The bootstrap resamples the seeds with replacement (``n_boot`` times, a fixed generator so a table is
reproducible) and takes the 2.5th and 97.5th percentiles of the resampled means for a 95 % interval. With
one seed there is no spread to resample: the interval and the standard error are None.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

N_BOOT = 2000
LEVEL = 0.95


def mean_se(values: Sequence[float]) -> tuple[float, Optional[float]]:
    """(mean, standard error of the mean with ddof = 1); the error is None for one value."""
    x = np.asarray(values, np.float64)
    return float(x.mean()), (float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else None)


def bootstrap_ci(values, level: float = LEVEL, n_boot: int = N_BOOT, seed: int = 0):
    """Percentile-bootstrap interval of the mean over the first axis of ``values`` ([seeds] or [seeds, T]):
    returns (low, high) arrays of the trailing shape, or (None, None) for one seed."""
    x = np.asarray(values, np.float64)
    if len(x) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    means = x[idx].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    return low, high


def normalized(value: float, zero: float, hundred: float) -> float:
    """100 · (value − zero) / (hundred − zero): 0 at the zero reference, 100 at the other."""
    return 100.0 * (value - zero) / (hundred - zero)
