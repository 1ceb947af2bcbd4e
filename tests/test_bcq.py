"""BCQ: the perturbation bound, update_many = single updates, determinism, the exported argmax_q policy (a NumPy
re-implementation of act), config checks and BRAC's quirks, and a one-step bandit it must solve."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bremen.algos.agent import Spec, batch_from_arrays, update_many
from bremen.algos.bcq import (NAME, OPTION_NAMES, PRESETS, VARIANTS, BCQ, BCQConfig, perturb, resolve,
                              validate)
from bremen.models.nets import mlp_init

SMOKE = dataclasses.replace(BCQConfig(), **PRESETS["smoke"])
SPEC = Spec.of(3, 2, [-1.0, 0.0], [2.0, 3.0])  # an asymmetric box: m = (0.5, 1.5), h = (1.5, 1.5)


# A one-step bandit (terminal = 1) in the box [−1, 2] (m = 0.5, h = 1.5): obs ~ N(0, 1), the data's actions
# ~ N(0.2, 0.3²), reward 1 − 4(a − 0.5)² (the factor 4 sharpens Q's peak: with 1 the small critics' fitting
# errors moved the argmax by up to 0.15). Its agent serves every test below, so they share compiled programs.
BANDIT = BCQ(Spec.of(1, 1, -1.0, 2.0), dataclasses.replace(SMOKE, phi=0.3))


def _bandit_data(n=2000):
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 1))
    act = np.clip(rng.normal(0.2, 0.3, (n, 1)), -1.0, 2.0)
    return batch_from_arrays(obs, act, 1.0 - 4.0 * (act[:, 0] - 0.5) ** 2, obs, np.ones(n))


# jitted entry points with the agent static (init stays eager: its ops compile once for all same-shape agents)
one_update = jax.jit(lambda agent, state, batch: agent.update(state, batch), static_argnums=0)
act = jax.jit(lambda agent, state, obs, key: agent.act(state, obs, key), static_argnums=0)


def _leaves_close(a, b, **tol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol)


@pytest.mark.parametrize("phi", [0.0, 0.05, 0.4])
def test_perturbation_stays_within_phi_half_and_the_box(phi):
    key = jax.random.PRNGKey(1)
    actor = mlp_init(key, [5, 16, 2], out_scale=30.0)  # saturates tanh: shifts reach ±Φ·h
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(size=(4000, 3)), jnp.float32)
    act = np.asarray(rng.uniform(SPEC.act_low, SPEC.act_high, (4000, 2)), np.float32)
    act[:10] = SPEC.act_low  # the box's corners too
    act[10:20] = SPEC.act_high
    act = jnp.asarray(act)
    out = np.asarray(perturb(actor, obs, act, SPEC, phi))
    assert np.all(np.abs(out - np.asarray(act)) <= phi * np.asarray(SPEC.half) + 1e-6)
    assert np.all(out >= np.asarray(SPEC.act_low)) and np.all(out <= np.asarray(SPEC.act_high))
    if phi == 0.0:
        np.testing.assert_array_equal(out, np.asarray(act))
    else:
        assert np.max(np.abs(out - np.asarray(act))) > 0.9 * phi * 1.5


def test_update_many_equals_single_updates_and_is_deterministic():
    agent, data = BANDIT, _bandit_data()
    s0 = agent.init(jax.random.PRNGKey(0))
    many, info = update_many(agent, s0, data, 5, 100)
    s, infos = s0, []
    for _ in range(5):  # update_many's sampling: split the state's key, indices from the second half
        key, k = jax.random.split(s.key)
        idx = jax.random.randint(k, (100,), 0, data.observations.shape[0])
        s, i = one_update(agent, s._replace(key=key), jax.tree.map(lambda a: a[idx], data))
        infos.append(i)
    assert int(many.step) == int(s.step) == 5
    _leaves_close(many, s, rtol=1e-4, atol=1e-5)
    for k, v in info.items():
        np.testing.assert_allclose(float(v), np.mean([float(i[k]) for i in infos]), rtol=1e-4, atol=1e-5)
    assert all(np.isfinite(float(v)) for v in info.values())
    assert {"vae_loss", "q_loss", "actor_loss"} <= set(info)
    again, _ = update_many(agent, agent.init(jax.random.PRNGKey(0)), data, 5, 100)
    for x, y in zip(jax.tree.leaves(many), jax.tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # same seed, same bits
    other, _ = update_many(agent, agent.init(jax.random.PRNGKey(1)), data, 5, 100)
    assert not np.allclose(np.asarray(other.q[0]["w"]), np.asarray(many.q[0]["w"]))


def test_export_layout_and_numpy_argmax_q_matches_act():
    agent = BANDIT
    state = agent.init(jax.random.PRNGKey(3))
    fields, arrays = agent.export(state)
    assert fields["kind"] == "argmax_q" and fields["proposal"] == "vae" and fields["n_samples"] == 100
    assert fields["latent_dim"] == 2 and fields["latent_clip"] == 0.5 and fields["max_perturbation"] == 0.3
    assert fields["hidden_sizes"] == [32, 32] and fields["act_low"] == [-1.0] and fields["act_high"] == [2.0]
    assert set(arrays) == {f"{p}/layers/{i}/{x}" for p in ("proposal", "perturb", "q") for i in range(3)
                           for x in "wb"}
    assert arrays["proposal/layers/0/w"].shape == (1 + 2, 32) and arrays["proposal/layers/2/w"].shape == (32, 1)
    assert arrays["perturb/layers/0/w"].shape == (2, 32) and arrays["q/layers/2/w"].shape == (32, 1)
    assert all(a.dtype == np.float32 for a in arrays.values())

    obs = np.random.default_rng(0).normal(size=(9, 1)).astype(np.float32)
    key = jax.random.PRNGKey(9)
    got = np.asarray(act(agent, state, jnp.asarray(obs), key))
    assert got.shape == (9, 1) and np.all(got >= -1.0) and np.all(got <= 2.0)

    def mlp(prefix, x):  # the exported policy's forward pass, in NumPy
        for i in range(3):
            x = x @ arrays[f"{prefix}/layers/{i}/w"] + arrays[f"{prefix}/layers/{i}/b"]
            x = np.maximum(x, 0.0) if i < 2 else x
        return x

    low, high = np.asarray(fields["act_low"]), np.asarray(fields["act_high"])
    mid, half = (high + low) / 2, (high - low) / 2
    z = np.clip(np.asarray(jax.random.normal(key, (100, 9, 2))), -0.5, 0.5)  # act's draw of z
    s = np.broadcast_to(obs, (100, 9, 1))
    a = mid + half * np.tanh(mlp("proposal", np.concatenate([s, z], -1)))
    a = np.clip(a + fields["max_perturbation"] * half * np.tanh(mlp("perturb", np.concatenate([s, a], -1))), low, high)
    best = np.argmax(mlp("q", np.concatenate([s, a], -1))[..., 0], axis=0)
    np.testing.assert_allclose(got, a[best, np.arange(9)], atol=1e-5)


def test_config_validation_presets_variants_and_option_names():
    assert NAME == "bcq"
    for preset in PRESETS.values():
        validate(dataclasses.replace(BCQConfig(), **preset))
    fields = {f.name for f in dataclasses.fields(BCQConfig)}
    assert set(OPTION_NAMES.values()) <= fields and OPTION_NAMES["action_flexibility"] == "phi"
    paper = resolve(BCQConfig(), act_dim=6)
    assert (paper.phi, paper.q_hidden, paper.actor_lr, paper.n_action_samples, paper.latent_dim) == \
        (0.05, (400, 300), 1e-3, 100, 12)
    brac = resolve(BCQConfig(variant="brac"))
    assert (brac.phi, brac.actor_hidden, brac.actor_lr, brac.n_action_samples, brac.batch_size) == \
        (0.15, (300, 300), 3e-5, 10, 100)
    assert resolve(BCQConfig(variant="brac", phi=0.3)).phi == 0.3  # explicit values win over the variant
    assert set(VARIANTS) == {"original", "brac"}
    for bad in ({"phi": -0.1}, {"lam": 1.5}, {"tau": 0.0}, {"tau": 1.5}, {"steps": 0}, {"q_lr": 0.0},
                {"batch_size": -1}, {"q_hidden": (64, 0)}, {"vae_hidden": ()}, {"n_action_samples": 0},
                {"variant": "bear"}):
        with pytest.raises(ValueError) as err:
            BCQ(SPEC, BCQConfig(**bad))
        msg, (name,) = str(err.value), bad
        assert "\n" not in msg and name in msg and ("must be" in msg or "valid:" in msg), msg
    assert BCQ(SPEC, BCQConfig(q_hidden=[64, 64])).config.q_hidden == (64, 64)  # lists become hashable tuples


def test_brac_quirks_freeze_the_target_actor_and_step_the_vae_at_the_actor_lr():
    batch = jax.tree.map(lambda a: a[:100], _bandit_data())
    quirky = BCQ(BANDIT.spec, dataclasses.replace(BANDIT.config, variant="brac", brac_quirks=True))
    for agent in (BANDIT, quirky):
        s0 = agent.init(jax.random.PRNGKey(0))
        s1, _ = one_update(agent, s0, batch)
        same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
        moved = max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(s1.vae), jax.tree.leaves(s0.vae)))
        if agent is quirky:  # Adam's first step moves a parameter by at most ≈ lr
            assert same(s1.actor_target, s0.actor_target) and not same(s0.actor, s0.actor_target)
            assert 1e-5 < moved <= 3.1e-5
        else:  # ξ̄ starts as a copy of ξ and follows it by τ
            assert not same(s1.actor_target, s0.actor_target) and same(s0.actor, s0.actor_target)
            np.testing.assert_allclose(s1.actor_target[0]["w"], 0.995 * s0.actor[0]["w"] + 0.005 * s1.actor[0]["w"],
                                       atol=1e-7)
            assert 5e-4 < moved <= 1.01e-3


def test_one_step_bandit_picks_the_best_supported_action():
    # reward peaks at a = 0.5 but the data's actions center at 0.2: imitation alone (Φ = 0) misses by ≈ 0.3; over
    # 10 seeds BCQ's worst miss was 0.07
    state = BANDIT.init(jax.random.PRNGKey(0))
    data = _bandit_data()
    for _ in range(300):  # 1500 updates, reusing the 5-update program of the test above
        state, info = update_many(BANDIT, state, data, 5, 100)
    assert float(info["q_loss"]) < 0.1 and abs(float(info["vae_recon"]) - 0.09) < 0.05
    test_obs = jnp.asarray(np.linspace(-2.0, 2.0, 9)[:, None], jnp.float32)
    a = np.asarray(act(BANDIT, state, test_obs, jax.random.PRNGKey(1)))[:, 0]
    assert np.all(np.abs(a - 0.5) < 0.15), a
    # the perturbation model learned to push the data's actions (mostly below 0.5) up
    shift = perturb(state.actor, test_obs, jnp.full((9, 1), 0.2), BANDIT.spec, 0.3) - 0.2
    assert float(jnp.min(shift)) > 0.05, shift
