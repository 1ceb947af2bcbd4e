"""Sweeps: a grid of offline or recursive runs (tasks × datasets × algorithms × seeds) on local processes or
a Ray cluster, resumable (``bremen sweep``)."""
