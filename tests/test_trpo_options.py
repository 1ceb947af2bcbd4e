"""TRPO options in one scanned run (padded batch, MLP baseline, KL penalty, KL check, …) and a slower learning run."""

import jax
import numpy as np
import pytest

from bremen.algos.trpo import TRPOConfig, trpo_init, trpo_run
from bremen.models import policy as P
from bremen.models.model_env import ModelEnv
from test_trpo import ENS, ENV, NORM, START, STATS


def test_options_run_scanned_and_finite():
    policy = P.policy_init(jax.random.PRNGKey(0), 1, 1, (16,), init_seed=None)
    behavior = P.policy_init(jax.random.PRNGKey(1), 1, 1, (16,), init_seed=None)
    # default likelihood (quirk 1): sampled with the fixed σ_g, ratios and KLs with the network σ
    env = ModelEnv(ENV.reward_fn, lambda s2: s2[..., 0] > 0.9, member_mode="rollout")
    cfg = TRPOConfig(batch_size=200, horizon=20, rollout_steps=30, padded_batch=True, baseline="mlp", kl_penalty=0.01,
                     line_search_kl=1.5, bootstrap_truncation=True, fisher_subsample=2)
    state = trpo_init(policy, STATS, behavior, STATS, ENS, NORM, START, jax.random.PRNGKey(0), cfg)
    state, info = trpo_run(state, jax.random.PRNGKey(0), config=cfg, env=env, n_iters=3)
    assert info["kl_after"].shape == (3,)
    assert all(np.isfinite(np.asarray(v)).all() for v in info.values())
    assert float(info["behavior_policy_kl_max"].min()) > 0.0
    assert np.all(np.asarray(info["kl_after"]) <= 1.5 * cfg.target_kl + 1e-6)


@pytest.mark.slow
def test_network_sigma_sampling_improves_return():
    # the original's non-const sampling: a = μ + σ(s)·𝒩(0, 1) with σ_g = 1, ratios with the same network σ
    from test_trpo import _return

    cfg = TRPOConfig(batch_size=640, horizon=20, target_kl=0.1, sampling_std=1.0, const_sampling=False)
    policy = P.policy_init(jax.random.PRNGKey(0), 1, 1, (32, 32), init_seed=None)
    state = trpo_init(policy, STATS, policy, STATS, ENS, NORM, START, jax.random.PRNGKey(0), cfg)
    before = _return(state.policy)
    state, info = trpo_run(state, jax.random.PRNGKey(1), config=cfg, env=ENV, n_iters=40)
    assert _return(state.policy) > before + 5.0
