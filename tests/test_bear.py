"""BEAR: the MMD against explicit loops, the Lagrange direction and clamp, update_many against single updates,
determinism, warm start, the argmax-Q policy and its export."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bremen.algos.agent import Spec, batch_from_arrays, update_many
from bremen.algos.agent import q_apply, q_init
from bremen.algos.bear import BEAR, BEARConfig, NAME, OPTION_NAMES, PRESETS, lagrange_step, policy_q, validate
from bremen.algos.divergences import mmd_bear

SMOKE = BEARConfig(**PRESETS["smoke"])
_update = jax.jit(lambda agent, state, batch: agent.update(state, batch), static_argnums=0)  # one compile per agent
SPEC = Spec.of(5, 2, [-1.0, 0.0], [1.0, 3.0])  # an asymmetric box


def _data(n=500, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 5))
    act = np.stack([np.tanh(obs[:, 0]), 1.5 + 1.4 * np.tanh(obs[:, 1])], axis=1) + rng.normal(0, 0.05, (n, 2))
    act = np.clip(act, [-1.0, 0.0], [1.0, 3.0])
    terminal = (rng.uniform(size=n) < 0.05).astype(np.float32)
    return batch_from_arrays(obs, act, obs[:, 2], obs + 0.1 * rng.normal(size=(n, 5)), terminal)


def _mmd_loops(x, y, kernel, sigma):
    def k(a, b):
        total = 0.0
        for i in range(len(a)):
            for j in range(len(b)):
                d = np.sum(np.abs(a[i] - b[j])) if kernel == "laplacian" else np.sum((a[i] - b[j]) ** 2)
                total += np.exp(-d / (2.0 * sigma))
        return total / (len(a) * len(b))
    return np.sqrt(k(x, x) + k(y, y) - 2.0 * k(x, y) + 1e-6)


@pytest.mark.parametrize("kernel", ["laplacian", "gaussian"])
def test_mmd_bear_matches_explicit_loops(kernel):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 3, 2)), rng.normal(1.0, 2.0, size=(2, 4, 2))  # 2 states, n=3 vs m=4 samples
    got = np.asarray(mmd_bear(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), kernel, 0.7))
    want = [_mmd_loops(x[b], y[b], kernel, 0.7) for b in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    same = mmd_bear(jnp.asarray(x[0]), jnp.asarray(x[0]), kernel, 0.7)
    np.testing.assert_allclose(same, 1e-3, rtol=1e-3)  # sqrt(1e-6) for identical samples


def test_lagrange_step_direction_and_clamp():
    opt = optax.adam(1e-3)
    la = jnp.asarray(0.0)
    up, _ = lagrange_step(opt, la, opt.init(la), jnp.array([0.3, 0.2]), 0.05, -5.0, 10.0)
    down, _ = lagrange_step(opt, la, opt.init(la), jnp.array([0.01, 0.02]), 0.05, -5.0, 10.0)
    assert float(up) > 0.0 > float(down)
    np.testing.assert_allclose([float(up), float(down)], [1e-3, -1e-3], rtol=1e-3)  # Adam's first step: ±lr
    big = optax.adam(1.0)
    for start, mmd, bound in ((9.5, 1.0, 10.0), (-4.5, 0.0, -5.0)):
        la = jnp.asarray(start)
        clamped, _ = lagrange_step(big, la, big.init(la), jnp.array([mmd]), 0.05, -5.0, 10.0)
        assert float(clamped) == bound


def test_update_moves_alpha_toward_the_constraint():
    agent, data = BEAR(SPEC, SMOKE), _data()
    state = agent.init(jax.random.PRNGKey(0))
    new, info = _update(agent, state, jax.tree.map(lambda a: a[:32], data))
    moved = float(new.log_alpha) - float(state.log_alpha)
    assert abs(moved) > 1e-4 and np.sign(moved) == np.sign(float(info["mmd"]) - SMOKE.mmd_target)
    np.testing.assert_allclose(info["alpha"], np.exp(float(new.log_alpha)), rtol=1e-6)


def test_update_many_equals_single_updates():
    agent, data = BEAR(SPEC, SMOKE), _data()
    state = agent.init(jax.random.PRNGKey(3))
    many, info = update_many(agent, state, data, 5, 32)
    single, infos = state, []
    for _ in range(5):
        key, k = jax.random.split(single.key)
        idx = jax.random.randint(k, (32,), 0, data.observations.shape[0])
        single, i = _update(agent, single._replace(key=key), jax.tree.map(lambda a: a[idx], data))
        infos.append(i)
    assert int(many.step) == 5
    for a, b in zip(jax.tree.leaves(many), jax.tree.leaves(single)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    for name in info:
        np.testing.assert_allclose(info[name], np.mean([float(i[name]) for i in infos]), rtol=1e-4, atol=1e-5)


def test_smoke_run_is_deterministic_finite_and_warm_starts():
    agent, data = BEAR(SPEC, SMOKE), _data()
    s1, s2 = agent.init(jax.random.PRNGKey(7)), agent.init(jax.random.PRNGKey(7))
    for _ in range(20):  # 100 updates, in calls of 5 (the compiled program of the test above)
        s1, info1 = update_many(agent, s1, data, 5, 32)
        s2, _ = update_many(agent, s2, data, 5, 32)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        np.testing.assert_array_equal(a, b)
    assert set(info1) == {"q_loss", "actor_loss", "vae_loss", "mmd", "alpha", "q_mean"}
    assert all(np.isfinite(float(v)) for v in info1.values()), info1
    assert int(s1.step) == 100 and -5.0 <= float(s1.log_alpha) <= 10.0
    # during the warm start (step < 50) the actor loss is α·MMD only; after it, −Q enters
    batch = jax.tree.map(lambda a: a[:32], data)
    fresh = agent.init(jax.random.PRNGKey(7))
    _, warm = _update(agent, fresh, batch)
    np.testing.assert_allclose(warm["actor_loss"], np.exp(float(fresh.log_alpha)) * warm["mmd"], rtol=1e-5)
    _, late = _update(agent, fresh._replace(step=jnp.asarray(50, jnp.int32)), batch)
    assert abs(float(late["actor_loss"] - warm["actor_loss"])) > 1e-6
    other, _ = update_many(agent, agent.init(jax.random.PRNGKey(8)), data, 5, 32)
    assert not np.array_equal(other.actor[0]["w"], s1.actor[0]["w"])


def _relu_mlp(layers, x):
    for i, (w, b) in enumerate(layers):
        x = x @ w + b
        x = np.maximum(x, 0.0) if i < len(layers) - 1 else x
    return x


def test_act_in_box_and_export_reproduces_it():
    agent, data = BEAR(SPEC, SMOKE), _data()
    state, _ = update_many(agent, agent.init(jax.random.PRNGKey(0)), data, 5, 32)
    obs, key = np.asarray(data.observations[:40]), jax.random.PRNGKey(11)
    acts = np.asarray(jax.jit(agent.act)(state, obs, key))
    assert acts.shape == (40, 2) and np.all(acts >= SPEC.act_low) and np.all(acts <= SPEC.act_high)
    fields, arrays = agent.export(state)
    assert fields["kind"] == "argmax_q" and fields["proposal"] == "tanh_gaussian" and fields["n_samples"] == 10
    assert fields["hidden_sizes"] == [32, 32] and fields["act_low"] == [-1.0, 0.0] and fields["noise_clip"] is None
    assert (fields["obs_dim"], fields["act_dim"], fields["log_std_min"], fields["log_std_max"]) == (5, 2, -5.0, 2.0)
    shapes = {"proposal/layers/0/w": (5, 32), "proposal/layers/2/w": (32, 4), "proposal/layers/2/b": (4,),
              "q/layers/0/w": (7, 32), "q/layers/2/w": (32, 1), "q/layers/1/b": (32,)}
    assert len(arrays) == 12 and all(arrays[k].shape == v for k, v in shapes.items())
    assert all(a.dtype == np.float32 for a in arrays.values())
    # the exported layout, evaluated in NumPy with the same noise, picks the same actions
    layer = lambda p: [(arrays[f"{p}/layers/{i}/w"], arrays[f"{p}/layers/{i}/b"]) for i in range(3)]
    n, eps = fields["n_samples"], np.asarray(jax.random.normal(key, (10, 40, 2)))
    out = _relu_mlp(layer("proposal"), obs)
    mu, raw = out[:, :2], out[:, 2:]
    log_std = -5.0 + 0.5 * 7.0 * (np.tanh(raw) + 1.0)
    mid, half = np.array([0.0, 1.5]), np.array([1.0, 1.5])
    cand = mid + half * np.tanh(mu + np.exp(log_std) * eps)  # [n, N, act]
    q = _relu_mlp(layer("q"), np.concatenate([np.broadcast_to(obs, (n, 40, 5)), cand], -1))[..., 0]
    np.testing.assert_allclose(cand[np.argmax(q, 0), np.arange(40)], acts, rtol=1e-4, atol=1e-4)


def test_validate_and_names():
    assert NAME == "bear" and PRESETS["paper"] == {}
    assert OPTION_NAMES["kernel_type"] == "kernel" and set(OPTION_NAMES.values()) <= {
        f.name for f in dataclasses.fields(BEARConfig)}
    validate(BEARConfig())
    for preset in PRESETS.values():
        validate(BEARConfig(**preset))
    bad = {"lagrange_thresh": -1.0, "mmd_sigma": 0.0, "kernel": "cosine", "version": 3, "mode": "manual",
           "actor_hidden": (0, 8), "q_lr": 0.0, "steps": 0, "batch_size": -2, "q_samples": "mean"}
    for name, value in bad.items():
        with pytest.raises(ValueError, match=name if name != "kernel" else "laplacian, gaussian") as err:
            validate(dataclasses.replace(BEARConfig(), **{name: value}))
        assert "\n" not in str(err.value)


def test_policy_q_averages_all_samples_or_takes_the_first():
    q = q_init(jax.random.PRNGKey(3), SPEC, (16, 16), 2)
    obs = jax.random.normal(jax.random.PRNGKey(4), (7, 5))
    a = jax.random.uniform(jax.random.PRNGKey(5), (4, 7, 2), minval=-1.0, maxval=1.0)
    per_sample = np.stack([np.asarray(q_apply(q, obs, a[i])) for i in range(4)], axis=1)  # [n_q, n, B]
    np.testing.assert_allclose(policy_q(q, obs, a, "all"), per_sample.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(policy_q(q, obs, a, "first"), per_sample[:, 0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(per_sample[:, 0], per_sample.mean(axis=1))  # the two choices differ on these samples


def test_first_sample_q_term_changes_only_the_actor_update():
    agent_all = BEAR(SPEC, dataclasses.replace(SMOKE, warmup_steps=0))
    agent_first = BEAR(SPEC, dataclasses.replace(SMOKE, warmup_steps=0, q_samples="first"))
    state = agent_all.init(jax.random.PRNGKey(0))
    batch = jax.tree.map(lambda x: x[:32], _data())
    new_all, info_all = _update(agent_all, state, batch)
    new_first, info_first = _update(agent_first, state, batch)
    for field in ("q", "vae", "q_target"):  # the critics and the VAE do not see the actor's Q term
        for x, y in zip(jax.tree.leaves(getattr(new_all, field)), jax.tree.leaves(getattr(new_first, field))):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    assert np.isfinite(float(info_first["actor_loss"]))
    assert float(info_all["actor_loss"]) != float(info_first["actor_loss"])
    moved = [not np.allclose(x, y) for x, y in zip(jax.tree.leaves(new_all.actor), jax.tree.leaves(new_first.actor))]
    assert any(moved)
