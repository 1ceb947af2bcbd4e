"""Runs: the driver that trains a learner deployment by deployment (offline is one deployment), the data
plans, the run directory, reports; the stacked-seed runs and the online run (SAC on its own steps: `train-behavior`)."""
