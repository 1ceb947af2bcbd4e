"""BRAC (bremen.algos.brac): the divergence estimates by hand, the value penalty, the warm start, the behavior
phase and with_behavior, the test policies, and finite, deterministic training for every (form, divergence)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bremen.algos.agent import Spec, actor_init, actor_sample, batch_from_arrays, q_apply, repeat_rows, update_many
from bremen.algos.brac import BRAC, DIVERGENCES, PRESETS, config_for, q_target_value, validate
from bremen.algos.divergences import gradient_penalty, mmd_squared_brac
from bremen.io.policy_io import policy_from_export

SPEC = Spec.of(3, 2, -1.0, 1.0)
SMOKE = PRESETS["smoke"]


def agent(name="brac_primal", **kw):
    return BRAC(SPEC, config_for(name, **{**SMOKE, **kw}))


def data(n=300, seed=0):
    r = np.random.default_rng(seed)
    obs = r.normal(size=(n, 3))
    act = np.clip(0.5 * obs[:, :2] + 0.1 * r.normal(size=(n, 2)), -1, 1)
    return batch_from_arrays(obs, act, r.normal(size=n), obs + 0.1 * r.normal(size=(n, 3)),
                             (r.uniform(size=n) < 0.05).astype(np.float32), np.roll(act, -1, axis=0))


def gaussian_actor(hidden, mu, sigma):
    """An actor whose head gives (μ, log σ) for every state: zero last-layer weights, log σ through the bias."""
    p = actor_init(jax.random.PRNGKey(5), SPEC, hidden)
    raw = np.arctanh((np.log(sigma) + 5.0) / 2.5 - 1.0)  # log σ = −5 + 2.5·(tanh(raw) + 1)
    bias = jnp.asarray([mu] * SPEC.act_dim + [raw] * SPEC.act_dim, jnp.float32)
    return p[:-1] + [{"w": jnp.zeros_like(p[-1]["w"]), "b": bias}]


def test_primal_kl_matches_the_closed_form_kl_of_two_gaussians():
    # the tanh Jacobian cancels in log π − log π_b, so D̂ estimates KL(N(μ1, σ1²) ‖ N(μ2, σ2²)) per dimension
    (m1, s1), (m2, s2) = (0.2, 0.5), (-0.1, 0.8)
    ag = agent(behavior_steps=0, n_div_samples=20_000)
    st = ag.init(jax.random.PRNGKey(0))
    st = ag.with_behavior(st, gaussian_actor((32, 32), m2, s2))._replace(actor=gaussian_actor((32, 32), m1, s1))
    d = jax.jit(ag.divergence)(st, st.actor, jnp.ones((4, 3)), None, None, jax.random.PRNGKey(1))
    kl = SPEC.act_dim * (np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5)
    assert d.shape == (4,) and float(jnp.mean(d)) == pytest.approx(kl, abs=0.02)


def mmd_loops(x, y, kernel, sigma):
    d = (lambda u, v: np.abs(u - v).sum()) if kernel == "laplacian" else (lambda u, v: ((u - v) ** 2).sum())
    k = lambda a, b: np.mean([[np.exp(-d(u, v) / sigma) for v in b] for u in a])  # noqa: E731
    return k(x, x) + k(y, y) - 2 * k(x, y)


@pytest.mark.parametrize("kernel", ["laplacian", "gaussian"])
def test_squared_mmd_matches_a_double_loop(kernel):
    r = np.random.default_rng(0)
    x, y = r.normal(size=(2, 4, 3)), r.normal(size=(2, 5, 3)) + 0.5
    for sigma in (20.0, 0.7):
        got = np.asarray(mmd_squared_brac(jnp.asarray(x), jnp.asarray(y), kernel, sigma))
        np.testing.assert_allclose(got, [mmd_loops(x[i], y[i], kernel, sigma) for i in range(2)], rtol=1e-4, atol=1e-6)


def test_primal_mmd_compares_the_samples_of_each_state():
    ag = agent(divergence="mmd", behavior_steps=0, mmd_sigma=0.5)
    st = ag.init(jax.random.PRNGKey(0))
    obs, key = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3)), jnp.float32), jax.random.PRNGKey(2)
    k_p, k_b = jax.random.split(key)
    a = np.asarray(actor_sample(st.actor, repeat_rows(obs, 4), k_p, SPEC)[0])  # [n, B, A]
    b = np.asarray(actor_sample(st.behavior, repeat_rows(obs, 4), k_b, SPEC)[0])
    got = np.asarray(jax.jit(ag.divergence)(st, st.actor, obs, None, None, key))
    np.testing.assert_allclose(got, [mmd_loops(a[:, i], b[:, i], "laplacian", 0.5) for i in range(3)], rtol=1e-4)


def linear_critic(w):
    """A ReLU MLP (hidden 2-2) computing c(s, a) = w·a exactly: relu(w·a) − relu(−w·a)."""
    w0 = jnp.zeros((3 + len(w), 2)).at[3:, 0].set(w).at[3:, 1].set(-jnp.asarray(w))
    return [{"w": w0, "b": jnp.zeros(2)}, {"w": jnp.eye(2), "b": jnp.zeros(2)},
            {"w": jnp.array([[1.0], [-1.0]]), "b": jnp.zeros(1)}]


def test_gradient_penalty_and_w_critic_loss_of_a_linear_critic():
    r = np.random.default_rng(0)
    obs, a_b, a_p = (jnp.asarray(r.normal(size=(8, k)), jnp.float32) for k in (3, 2, 2))
    c = lambda w: lambda s, a: a @ jnp.asarray(w)  # noqa: E731
    assert float(gradient_penalty(c([1.8, 2.4]), obs, a_b, a_p, jax.random.PRNGKey(0))) == pytest.approx(20.0)
    assert float(gradient_penalty(c([0.3, 0.4]), obs, a_b, a_p, jax.random.PRNGKey(0))) == 0.0  # one-sided
    ag = agent("brac_dual", divergence="w", critic_hidden=(2, 2))
    w = jnp.array([1.8, 2.4])  # ‖w‖ = 3: L_c = −mean(w·a_π − w·a_b) + 5·(3 − 1)²
    st = ag.init(jax.random.PRNGKey(0))._replace(critic=linear_critic(w))
    key = jax.random.PRNGKey(3)
    a_pi = actor_sample(st.actor, obs, jax.random.split(key)[0], SPEC)[0]
    _, loss = jax.jit(ag._critic_step)(st, obs, a_b, key)
    assert float(loss) == pytest.approx(-float(jnp.mean(a_pi @ w - a_b @ w)) + 20.0, rel=1e-5)


def test_value_penalty_moves_the_q_target_by_alpha_times_the_divergence():
    r, terminal = jnp.array([1.0, 0.5, -1.0]), jnp.array([0.0, 0.0, 1.0])
    q2, logp2, div = jnp.array([10.0, 4.0, 3.0]), jnp.array([-1.0, 0.5, 0.0]), jnp.array([0.3, 2.0, 5.0])
    args = (r, terminal, q2, logp2, 0.2, 0.7, div, 0.99)
    off, on = q_target_value(*args, value_penalty=False), q_target_value(*args, value_penalty=True)
    np.testing.assert_allclose(np.asarray(off), [1 + 0.99 * (10 + 0.2), 0.5 + 0.99 * (4 - 0.1), -1.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(off - on), 0.99 * 0.7 * np.array([0.3, 2.0, 0.0]), rtol=1e-6)


def test_warm_start_the_actor_loss_has_no_q_term_until_warm_start_brac_updates():
    ag = agent(behavior_steps=10, warm_start=50)
    st, batch, key = ag.init(jax.random.PRNGKey(0)), data(16), jax.random.PRNGKey(1)
    loss = jax.jit(lambda s: ag.actor_loss(s.actor, s, batch, key)[0])
    shifted = st.q[:-1] + [{"w": st.q[-1]["w"], "b": st.q[-1]["b"] + 100.0}]  # every Q_k + 100
    for step, q_term in ((0, False), (60, False), (61, True)):  # BRAC updates done = step − 10
        s = st._replace(step=jnp.asarray(step, jnp.int32))
        base, moved = float(loss(s)), float(loss(s._replace(q=shifted)))
        assert moved == pytest.approx(base - 100.0 if q_term else base, abs=1e-3)


def test_with_behavior_installs_the_given_policy_and_refuses_misuse():
    ag = agent(behavior_steps=0)
    st = ag.init(jax.random.PRNGKey(0))
    pb = actor_init(jax.random.PRNGKey(9), SPEC, (32, 32))
    new = ag.with_behavior(st, pb)
    for got, want in zip(jax.tree.leaves(new.behavior), jax.tree.leaves(pb)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    with pytest.raises(ValueError, match="hidden sizes"):
        ag.with_behavior(st, actor_init(jax.random.PRNGKey(9), SPEC, (8,)))
    with pytest.raises(ValueError, match="behavior_steps=0"):
        agent(behavior_steps=5).with_behavior(st, pb)
    with pytest.raises(ValueError, match="no behavior policy"):
        agent("brac_dual").with_behavior(st, pb)


def test_validate_names_the_valid_choices():
    with pytest.raises(ValueError, match="valid: kl, mmd"):
        validate(config_for("brac_primal", divergence="w"))
    with pytest.raises(ValueError, match="valid: kl, w"):
        validate(config_for("brac_dual", divergence="mmd"))
    for bad in ({"alpha": -1.0}, {"q_lr": 0.0}, {"steps": 0}, {"q_hidden": (0,)}, {"eval_policy": "best"}):
        with pytest.raises(ValueError):
            validate(config_for("brac_primal", **bad))
    with pytest.raises(ValueError, match="brac_primal, brac_dual"):
        config_for("brac")
    assert config_for("brac_dual").behavior_updates == 0 and config_for("brac_primal").total_steps == 800_000


def test_max_q_policy_picks_the_best_sample_under_q1_and_exports():
    ag = agent(behavior_steps=0, eval_policy="max_q")
    st, obs, key = ag.init(jax.random.PRNGKey(0)), data(5).observations, jax.random.PRNGKey(4)
    a = actor_sample(st.actor, repeat_rows(obs, 10), key, SPEC)[0]
    q1 = q_apply(st.q, repeat_rows(obs, 10), a)[0]
    want = a[jnp.argmax(q1, axis=0), jnp.arange(5)]
    np.testing.assert_allclose(np.asarray(jax.jit(ag.act)(st, obs, key)), np.asarray(want), rtol=1e-6)
    fields, arrays = ag.export(st)
    assert fields["kind"] == "argmax_q" and fields["n_samples"] == 10 and "q/layers/2/b" in arrays
    assert "q/layers/3/w" not in arrays and arrays["q/layers/0/w"].shape == (5, 32)
    assert policy_from_export(fields, arrays).act(np.asarray(obs)).shape == (5, 2)


def hundred_updates(ag, state, batch):
    """update_many(ag, ·, batch, 100, 32)'s program, compiled without XLA's backend optimisations: a 2-3x
    shorter compile on a busy CPU, which keeps the four agents' compiles within this file's time."""
    return update_many.lower(ag, state, batch, 100, 32).compile(
        compiler_options={"xla_backend_optimization_level": 0})


@pytest.fixture(scope="module")
def trained():
    """100 smoke updates (primal: 100 of cloning π_b, then 100 of BRAC) for every (form, divergence)."""
    batch, out = data(), {}
    for form, divs in DIVERGENCES.items():
        for div in divs:
            ag = agent(f"brac_{form}", divergence=div, train_alpha=True, train_alpha_entropy=True)
            s0 = ag.init(jax.random.PRNGKey(0))
            run = hundred_updates(ag, s0, batch)
            runs = [run(s0, batch)]
            if form == "primal":
                runs.append(run(runs[0][0], batch))
            out[form, div] = (ag, s0, runs, run)
    return batch, out


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_every_form_and_divergence_trains_with_finite_losses(trained):
    _, out = trained
    for (form, div), (ag, s0, runs, _) in out.items():
        state, info = runs[-1]
        assert int(state.step) == 100 * len(runs) and float(info["behavior_phase"]) == 0.0
        assert all(np.isfinite(float(v)) for v in info.values()), (form, div, info)
        assert float(info["div_mean"]) != 0.0 and float(info["q_loss"]) > 0.0
        if form == "dual":
            assert float(info["critic_loss"]) != 0.0
        else:  # first call: only π_b moved; second: π_b frozen, actor and Q moved
            (s1, i1), (s2, _) = runs
            assert float(i1["behavior_phase"]) == 1.0 and np.isfinite(float(i1["behavior_loss"]))
            assert same(s1.actor, s0.actor) and same(s1.q, s0.q) and not same(s1.behavior, s0.behavior)
            assert same(s2.behavior, s1.behavior) and not same(s2.actor, s1.actor) and not same(s2.q, s1.q)


def test_training_is_deterministic_under_a_seed(trained):
    batch, out = trained
    ag, s0, runs, run = out["dual", "w"]
    again, other = run(ag.init(jax.random.PRNGKey(0)), batch)[0], run(ag.init(jax.random.PRNGKey(1)), batch)[0]
    for a, b, c in zip(jax.tree.leaves(runs[0][0]), jax.tree.leaves(again), jax.tree.leaves(other)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(runs[0][0].actor[0]["w"]), np.asarray(other.actor[0]["w"]))


def test_the_learner_gives_the_dual_value_penalty_the_datasets_next_actions():
    """BRAC-v in dual form reads Batch.next_actions: the learner's device batch carries Dataset.next_actions."""
    from bremen.data import Dataset
    from bremen.learners.actor_critic import device_batch

    r = np.random.default_rng(0)
    obs = r.normal(size=(11, 3)).astype(np.float32)
    ds = Dataset.from_arrays({"observations": obs[:-1], "next_observations": obs[1:],
                              "actions": r.uniform(-1, 1, (10, 2)), "rewards": r.normal(size=10),
                              "terminals": np.zeros(10), "timeouts": np.arange(10) == 9})
    batch = device_batch(ds)
    np.testing.assert_array_equal(np.asarray(batch.next_actions[:9]), ds.actions[1:])
    np.testing.assert_array_equal(np.asarray(batch.next_actions[9]), ds.actions[9])  # truncated: its own action
