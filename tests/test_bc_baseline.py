"""BRAC's BC baseline (bremen.algos.bc_baseline): update_many = single updates, it learns a 1-D map, the
straight-through clip, validation, and the exported policy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bremen.algos.agent import Spec, batch_from_arrays, update_many
from bremen.algos.bc_baseline import BC, PRESETS, BCConfig, clip_v2, validate
from bremen.io.policy_io import policy_from_export

SMOKE = BCConfig(**PRESETS["smoke"])


def line_data(n=512, seed=0):
    """1-D: a = clip(0.5·s + noise, −1, 1), s ~ U(−1.5, 1.5)."""
    r = np.random.default_rng(seed)
    obs = r.uniform(-1.5, 1.5, size=(n, 1))
    act = np.clip(0.5 * obs + 0.02 * r.normal(size=(n, 1)), -1, 1)
    return batch_from_arrays(obs, act, np.zeros(n), obs, np.zeros(n))


def test_update_many_equals_single_updates_with_the_same_draws():
    agent, data = BC(Spec.of(1, 1, -1, 1), SMOKE), line_data(64)
    s0 = agent.init(jax.random.PRNGKey(0))
    many, info = update_many(agent, s0, data, 5, 32)
    one = jax.jit(agent.update)
    s, losses = s0, []
    for _ in range(5):  # update_many's draws: key, k = split(state.key); idx = randint(k, (B,), 0, N)
        key, k = jax.random.split(s.key)
        idx = jax.random.randint(k, (32,), 0, data.observations.shape[0])
        s, i = one(s._replace(key=key), jax.tree.map(lambda a: a[idx], data))
        losses.append(float(i["bc_loss"]))
    for a, b in zip(jax.tree.leaves(many), jax.tree.leaves(s)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert int(many.step) == 5 and float(info["bc_loss"]) == pytest.approx(np.mean(losses), rel=1e-5)


def test_bc_learns_a_one_dimensional_map():
    agent = BC(Spec.of(1, 1, -1, 1), BCConfig(actor_hidden=(32, 32), lr=3e-3))
    state = agent.init(jax.random.PRNGKey(1))
    state, info = update_many(agent, state, line_data(), 600, 64)
    obs = jnp.linspace(-1.4, 1.4, 15)[:, None]
    err = np.abs(np.asarray(agent.act(state, obs, None)) - 0.5 * np.asarray(obs))
    assert err.max() < 0.1, err.ravel()
    assert float(info["alpha_entropy"]) < 1.0  # the temperature fell from 1.0 toward the target entropy
    fields, arrays = agent.export(state)
    assert fields["kind"] == "tanh_gaussian" and fields["hidden_sizes"] == [32, 32]
    np.testing.assert_allclose(policy_from_export(fields, arrays).act(np.asarray(obs)),
                               np.asarray(agent.act(state, obs, None)), rtol=1e-4, atol=1e-5)


def test_clip_v2_passes_gradients_that_move_back_inside():
    g = lambda x, sign: float(jax.grad(lambda v: sign * clip_v2(v, 0.0, 1.0))(jnp.float32(x)))  # noqa: E731
    assert g(-0.5, 1.0) == 0.0 and g(-0.5, -1.0) == -1.0  # below: only a step up passes
    assert g(1.5, -1.0) == 0.0 and g(1.5, 1.0) == 1.0  # above: only a step down passes
    assert g(0.5, 1.0) == 1.0 and float(clip_v2(jnp.float32(3.0), 0.0, 1.0)) == 1.0


def test_validate_rejects_bad_settings():
    validate(BCConfig())
    for bad in ({"lr": 0.0}, {"steps": 0}, {"actor_hidden": ()}, {"alpha_entropy": -1.0}, {"clip_eps": 1.0},
                {"loss": "l1"}):
        with pytest.raises(ValueError):
            validate(BCConfig(**bad))


def test_mse_bc_fits_the_test_policy_to_the_actions_by_squared_error():
    """loss 'mse' (d3rlpy's deterministic BC): the reported loss is eq. (3) on the minibatch, the gradient
    moves only the mean half of the head, and it learns the 1-D map."""
    spec = Spec.of(1, 1, -1, 1)
    agent = BC(spec, BCConfig(actor_hidden=(32, 32), lr=3e-3, loss="mse"))
    s0 = agent.init(jax.random.PRNGKey(1))
    data = line_data()
    s1, info = jax.jit(agent.update)(s0, data)
    by_hand = np.mean((np.asarray(agent.act(s0, data.observations, None)) - np.asarray(data.actions)) ** 2)
    assert float(info["bc_loss"]) == pytest.approx(by_hand, rel=1e-5) and set(info) == {"bc_loss"}
    w_out = np.asarray(s1.actor[-1]["w"]) - np.asarray(s0.actor[-1]["w"])
    assert np.all(w_out[:, 1] == 0) and np.any(w_out[:, 0] != 0)  # σ's column (index 1) untouched
    assert float(s1.alpha_entropy) == float(s0.alpha_entropy)
    state, _ = update_many(agent, s0, data, 600, 64)
    obs = jnp.linspace(-1.4, 1.4, 15)[:, None]
    err = np.abs(np.asarray(agent.act(state, obs, None)) - 0.5 * np.asarray(obs))
    assert err.max() < 0.1, err.ravel()
