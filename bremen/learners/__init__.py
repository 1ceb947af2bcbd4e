"""What a run drives: learners train on the data available now and call back into the run's hooks.

``model_based``: BREMEN and ME-TRPO (dynamics ensemble, BC, TRPO on imaginary rollouts).
"""
