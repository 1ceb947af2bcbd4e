"""Gaussian policy head, sampling modes, log-prob/KL math and the running observation statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm as sp_norm

from bremen.models import normalizer as N
from bremen.models import policy as P


def test_running_stats_match_numpy():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(3.0, 2.0, (n, 4)) * [1, 1, 0.01, 1] for n in (1, 7, 500)]
    stats = N.running_stats_init(4)
    for c in chunks:
        stats = N.update(stats, c)
    x = np.concatenate(chunks).astype(np.float64)
    var = np.maximum((x**2).mean(0) - x.mean(0) ** 2, 0.01)  # the original's formula, incl. the floor
    mean, std = N.mean_std(stats)
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std, np.sqrt(var + 1e-6), rtol=1e-5)
    assert float(std[2]) == pytest.approx(np.sqrt(0.01 + 1e-6), rel=1e-6)  # floored dimension
    np.testing.assert_allclose(N.normalize(stats, x[:3]), (x[:3] - x.mean(0)) / np.sqrt(var + 1e-6), rtol=1e-4,
                               atol=1e-4)


def test_running_stats_empty_is_identity():
    mean, std = N.mean_std(N.running_stats_init(3))
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_array_equal(std, 1.0)


def test_normc_init_fixed_seed_and_scales():
    a = P.policy_init(jax.random.PRNGKey(0), 5, 3)
    b = P.policy_init(jax.random.PRNGKey(99), 5, 3)
    for la, lb in zip(a, b):  # identical whatever the key (quirk 8)
        np.testing.assert_array_equal(la["w"], lb["w"])
    assert [layer["w"].shape for layer in a] == [(5, 200), (200, 200), (200, 6)]
    np.testing.assert_allclose(jnp.linalg.norm(a[0]["w"], axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(jnp.linalg.norm(a[-1]["w"], axis=0), 0.01, rtol=1e-5)
    assert all(float(jnp.abs(layer["b"]).max()) == 0.0 for layer in a)
    c = P.policy_init(jax.random.PRNGKey(0), 5, 3, init_seed=None)
    d = P.policy_init(jax.random.PRNGKey(1), 5, 3, init_seed=None)
    assert not np.allclose(c[0]["w"], d[0]["w"])


def test_head_bounds():
    params = P.policy_init(jax.random.PRNGKey(0), 3, 2, (16,), init_seed=None, out_scale=50.0)
    obs = jax.random.normal(jax.random.PRNGKey(1), (1000, 3)) * 10
    stats = N.running_stats_init(3)
    mu, log_std = P.dist(params, stats, obs, act_low=-2.0, act_high=4.0)
    assert float(mu.min()) >= -2.0 and float(mu.max()) <= 4.0 and float(mu.max()) > 3.0
    assert float(log_std.min()) >= -5.0 and float(log_std.max()) <= 0.0
    _, ls0 = P.dist(P.policy_init(None, 3, 2), stats, obs / 10)
    np.testing.assert_allclose(ls0, -2.5, atol=0.2)  # ≈ −2.5 at init (l ≈ 0)


def test_sampling_modes():
    params = P.policy_init(None, 2, 2, (16,))
    stats = N.running_stats_init(2)
    obs = jnp.zeros((20000, 2))
    mu, log_std = P.dist(params, stats, obs)
    k = jax.random.PRNGKey(0)
    a_const = P.sample(params, stats, obs, k, sampling_std=0.3, const_sampling=True)
    a_scaled = P.sample(params, stats, obs, k, sampling_std=0.3, const_sampling=False)
    np.testing.assert_allclose(jnp.std(a_const - mu, 0), 0.3, rtol=0.03)
    np.testing.assert_allclose(jnp.std(a_scaled - mu, 0), 0.3 * jnp.exp(log_std[0]), rtol=0.03)
    np.testing.assert_array_equal(P.sample(params, stats, obs, k, deterministic=True), mu)


def test_log_prob_matches_scipy():
    mu, ls, a = jnp.array([0.3, -1.0]), jnp.array([-1.0, 0.5]), jnp.array([0.1, 0.7])
    expected = sp_norm.logpdf(a, mu, np.exp(ls)).sum()
    assert float(P.log_prob(mu, ls, a)) == pytest.approx(expected, rel=1e-5)


def test_kl_zero_for_identical_and_matches_monte_carlo():
    mu0, ls0 = jnp.array([0.2, -0.5, 1.0]), jnp.array([-1.0, 0.3, -0.2])
    mu1, ls1 = jnp.array([0.0, 0.1, 1.5]), jnp.array([-0.5, 0.0, -0.7])
    assert float(P.kl(mu0, ls0, mu0, ls0)) == pytest.approx(0.0, abs=1e-7)
    x = mu0 + jnp.exp(ls0) * jax.random.normal(jax.random.PRNGKey(0), (400_000, 3))
    mc = jnp.mean(P.log_prob(mu0, ls0, x) - P.log_prob(mu1, ls1, x))
    assert float(P.kl(mu0, ls0, mu1, ls1)) == pytest.approx(float(mc), rel=0.02)
