"""Dynamics ensemble: normalization, L2 term, learning a toy linear system, early stopping, warm start."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bremen.models import dynamics as D
from bremen.models import normalizer as N

OBS, ACT = 3, 2
A = np.array([[0.9, 0.1, 0.0], [0.0, 0.8, 0.3], [-0.2, 0.0, 1.0]], np.float32)
B = np.array([[0.5, 0.0], [0.0, 1.0], [0.3, -0.4]], np.float32)


def _linear_data(n, seed):
    rng = np.random.default_rng(seed)
    obs = rng.normal(0, 1, (n, OBS)).astype(np.float32) * [1.0, 2.0, 0.5] + [0, 3, 0]
    act = rng.uniform(-1, 1, (n, ACT)).astype(np.float32)
    next_obs = obs @ A.T + act @ B.T
    rew = obs.sum(-1) - act[:, 0] ** 2
    return obs.astype(np.float32), act, next_obs.astype(np.float32), rew.astype(np.float32)


def test_fit_normalization_population_std():
    obs, act, nxt, rew = _linear_data(500, 0)
    norm = N.fit_normalization(obs, act, nxt)
    np.testing.assert_allclose(norm.obs_std, obs.std(0), rtol=1e-5)
    np.testing.assert_allclose(norm.delta_mean, (nxt - obs).mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.act_std, act.std(0), rtol=1e-5)
    assert float(norm.rew_std) == 1.0
    assert float(N.fit_normalization(obs, act, nxt, rew).rew_std) == pytest.approx(rew.std(), rel=1e-5)


def test_l2_only_hidden_kernels():
    params = D.ensemble_init(jax.random.PRNGKey(0), OBS, ACT, D.DynamicsConfig(hidden=8, ensemble_size=2)).params
    member = jax.tree.map(lambda p: p[0], params)
    expected = 0.5 * (jnp.sum(member[0]["w"] ** 2) + jnp.sum(member[1]["w"] ** 2))
    assert float(D.l2_hidden(member)) == pytest.approx(float(expected), rel=1e-6)
    assert [layer["w"].shape for layer in params] == [(2, 5, 8), (2, 8, 8), (2, 8, 3)]


CFG = D.DynamicsConfig(ensemble_size=3, hidden=32, batch_size=100, epochs=30)


def test_ensemble_learns_linear_dynamics():
    train, val, test = _linear_data(2000, 0), _linear_data(1000, 1), _linear_data(1000, 2)
    cfg = CFG
    norm = N.fit_normalization(*train[:3])
    state = D.ensemble_init(jax.random.PRNGKey(0), OBS, ACT, cfg)
    before = np.asarray(D.predict(state.params, norm, test[0], test[1], 0))
    checks = []
    state, report = D.fit(state, norm, train, val, jax.random.PRNGKey(1), cfg,
                          callback=lambda e, tr, v: checks.append(e))
    assert checks == [0, 5, 10, 15, 20, 25, 29]
    assert [c[0] for c in report.val_checks] == [0, 5, 10, 15, 20, 25]
    assert report.train_loss[-1].max() < 0.2 * report.train_loss[0].min()
    assert np.all(report.epochs == 30)
    scale = np.mean((test[2] - test[0]) ** 2)
    preds = [np.asarray(D.predict(state.params, norm, test[0], test[1], k)) for k in range(3)]
    for p in preds:
        assert np.mean((p - test[2]) ** 2) < 5e-3 * scale  # relative RMS error of the delta < ~7%
    assert np.mean((before - test[2]) ** 2) > 0.1 * scale
    assert not np.allclose(preds[0], preds[1])  # members differ (init and shuffle order)
    assert report.val_checks[-1][1].shape == (3,)


def test_early_stopping_rule():
    best, best_epoch = np.full(1, np.inf), np.zeros(1, int)
    stopped_at = None
    for epoch, loss in zip(range(0, 60, 5), [1.0, 0.9, 1.1, 0.95, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9]):
        best, best_epoch, _, stop = D.early_stop_check(best, best_epoch, np.array([loss]), epoch, 20)
        if stop[0]:
            stopped_at = epoch
            break
    assert stopped_at == 25 and best_epoch[0] == 5  # (25 − 5) ≥ 20


def test_fit_stops_early_without_restoring_best():
    obs, act, nxt, rew = _linear_data(2000, 0)
    cfg = D.DynamicsConfig(**{**CFG.__dict__, "epochs": 100})
    norm = N.fit_normalization(obs, act, nxt)
    # validation targets point the other way, so every check after epoch 0 is worse: stop at epoch 20
    bad_val = (obs, act, 2 * obs - nxt)
    state, report = D.fit(D.ensemble_init(jax.random.PRNGKey(0), OBS, ACT, cfg), norm, (obs, act, nxt), bad_val,
                          jax.random.PRNGKey(1), cfg)
    np.testing.assert_array_equal(report.epochs, [21, 21, 21])
    assert [c[0] for c in report.val_checks] == [0, 5, 10, 15, 20]
    v0, v_last = report.val_checks[0][1], report.val_checks[-1][1]
    yv = D.targets(norm, obs, bad_val[2])
    xv = N.normalize_inputs(norm, obs, act)
    np.testing.assert_allclose(D.validation_mse(state.params, xv, yv, 1000), v_last, rtol=1e-5)
    best_state, _ = D.fit(D.ensemble_init(jax.random.PRNGKey(0), OBS, ACT, cfg), norm, (obs, act, nxt), bad_val,
                          jax.random.PRNGKey(1), D.DynamicsConfig(**{**cfg.__dict__, "restore_best": True}))
    np.testing.assert_allclose(D.validation_mse(best_state.params, xv, yv, 1000), v0, rtol=1e-5)


def test_adam_state_persists_unless_reset():
    data = _linear_data(2050, 0)
    cfg = D.DynamicsConfig(**{**CFG.__dict__, "epochs": 2, "batch_size": 1000})
    norm = N.fit_normalization(*data[:3])
    state = D.ensemble_init(jax.random.PRNGKey(0), OBS, ACT, cfg)
    state, _ = D.fit(state, norm, data, None, jax.random.PRNGKey(1), cfg)
    assert int(state.opt_state[0].count) == 4  # 2 epochs × 2 full minibatches (the partial one dropped)
    state, _ = D.fit(state, norm, data, None, jax.random.PRNGKey(2), cfg)
    assert int(state.opt_state[0].count) == 8
    reset = D.DynamicsConfig(**{**cfg.__dict__, "reset_optimizer": True})
    state, _ = D.fit(state, norm, data, None, jax.random.PRNGKey(3), reset)
    assert int(state.opt_state[0].count) == 4


def test_learned_reward_head():
    train, test = _linear_data(2000, 0), _linear_data(500, 2)
    cfg = D.DynamicsConfig(**{**CFG.__dict__, "learn_reward": True})
    norm = N.fit_normalization(*train)
    state, _ = D.fit(D.ensemble_init(jax.random.PRNGKey(0), OBS, ACT, cfg), norm, train, None,
                     jax.random.PRNGKey(1), cfg)
    nxt, rew = D.predict_reward(state.params, norm, test[0], test[1], 1)
    assert np.mean((np.asarray(rew) - test[3]) ** 2) < 0.02 * np.var(test[3])
    assert np.mean((np.asarray(nxt) - test[2]) ** 2) < 0.01 * np.mean((test[2] - test[0]) ** 2)
    with pytest.raises(ValueError, match="no reward head"):
        plain = D.ensemble_init(jax.random.PRNGKey(0), OBS, ACT, D.DynamicsConfig(hidden=8))
        D.predict_reward(plain.params, norm, test[0], test[1], 0)
