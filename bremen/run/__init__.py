"""Runs: the driver that trains a learner deployment by deployment (offline is one deployment), the data
plans, the run directory, reports; the stacked-seed runs and SAC's online behavior training."""
