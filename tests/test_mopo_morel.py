"""MOPO and MOReL on the shared ensemble: the Gaussian members' NLL, MOPO's penalty and rollouts, MOReL's halting,
the mixed minibatches, a probabilistic ensemble that learns a noise level, and both commands end to end."""

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bremen.algos.agent import Batch, Spec, update_many_mixed
from bremen.algos.mopo import model_rollout, penalized_step, uncertainty
from bremen.algos.replay import ReplayBuffer
from bremen.models import dynamics as D
from bremen.models import normalizer as N
from bremen.models import probabilistic as P
from bremen.models.model_env import ModelEnv, disagreement_on, member_disagreement

ROOT = Path(__file__).resolve().parent.parent


def test_logvar_is_bounded_smoothly_and_the_nll_is_the_gaussian_one_by_hand():
    member = P.init_member(jax.random.PRNGKey(0), (3, 8, 2))
    member = {**member, "logvar_max": jnp.array([0.5, 1.0]), "logvar_min": jnp.array([-10.0, -3.0])}
    x = jax.random.normal(jax.random.PRNGKey(1), (16, 3))
    y = jax.random.normal(jax.random.PRNGKey(2), (16, 2))
    mean, logvar = P.mean_logvar(member, x)
    loss, mse = P.nll_loss(member, x, y)
    m, lv = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    expected = np.mean((m - np.asarray(y)) ** 2 * np.exp(-lv) + lv) + 0.01 * ((0.5 + 1.0) - (-10.0 - 3.0))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(mse) == pytest.approx(np.mean((m - np.asarray(y)) ** 2), rel=1e-5)
    # far outside the bounds the raw output is squashed onto them: log σ² → hi above, → lo below
    big = {**member, "mlp": [*member["mlp"][:-1], {"w": member["mlp"][-1]["w"] * 0, "b": jnp.array([0, 0, 1e3, -1e3])}]}
    _, lv_big = P.mean_logvar(big, x[:1])
    np.testing.assert_allclose(np.asarray(lv_big)[0], [0.5, -3.0], atol=1e-4)


def test_uncertainty_is_the_largest_member_std_norm_in_data_units():
    logvar = jnp.log(jnp.array([[[1.0, 4.0]], [[9.0, 0.25]]]))  # members' σ: (1, 2) and (3, 0.5), one row
    scale = jnp.array([2.0, 10.0])
    # ‖σ ⊙ scale‖: member 0 √(2² + 20²) = 20.10, member 1 √(6² + 5²) = 7.81
    assert float(uncertainty(logvar, scale)[0]) == pytest.approx(np.sqrt(404.0), rel=1e-6)


def _constant_members(biases, probabilistic=False, logvars=None):
    """Members whose normalized output is a constant: zero kernels, the given output biases."""
    k = len(biases)
    sizes = (2, 4, len(biases[0]))
    members = [P.init_member(jax.random.PRNGKey(i), sizes) if probabilistic else D.mlp_init(jax.random.PRNGKey(i), sizes)
               for i in range(k)]
    out = []
    for b, lv, mem in zip(biases, logvars or [None] * k, members):
        layers = mem["mlp"] if probabilistic else mem
        last = {"w": jnp.zeros_like(layers[-1]["w"]),
                "b": jnp.asarray(list(b) + (list(lv) if probabilistic else []), jnp.float32)}
        layers = [*layers[:-1], last]
        out.append({**mem, "mlp": layers, "logvar_max": jnp.full(len(b), 50.0), "logvar_min": jnp.full(len(b), -50.0)}
                   if probabilistic else layers)
    return jax.tree.map(lambda *xs: jnp.stack(xs), *out)


def test_morel_halts_where_the_members_disagree_and_charges_kappa():
    ens = _constant_members([[0.0], [3.0], [1.0]])  # obs 1-d, act 1-d; predictions differ by at most 3
    norm = N.identity_normalization(1, 1)
    obs, act = jnp.zeros((4, 1)), jnp.zeros((4, 1))
    assert float(member_disagreement(D.apply_all(ens, jnp.zeros((4, 2))), 1)[0]) == pytest.approx(3.0)
    mean, top = disagreement_on(ens, norm, obs, act, chunk=3)  # two chunks, the second padded
    assert float(mean) == pytest.approx(3.0) and float(top) == pytest.approx(3.0)
    reward = lambda s, a, s2: jnp.ones(s.shape[0])  # noqa: E731
    for threshold, halted in ((2.9, True), (3.1, False)):
        env = ModelEnv(reward, None, halt_threshold=threshold, halt_penalty=100.0)
        nxt, rew, term = env.step_members(ens, norm, obs, act, jnp.asarray(1))
        np.testing.assert_allclose(np.asarray(nxt), 3.0)  # member 1's prediction
        assert bool(term.all()) == halted
        np.testing.assert_allclose(np.asarray(rew), 1.0 - 100.0 if halted else 1.0)


def test_disagreement_penalty_lowers_every_reward_by_lambda_times_the_disagreement_in_both_member_modes():
    ens = _constant_members([[0.0], [3.0], [1.0]])  # disagreement 3 everywhere
    norm = N.identity_normalization(1, 1)
    obs, act = jnp.zeros((4, 1)), jnp.zeros((4, 1))
    reward = lambda s, a, s2: s2[:, 0]  # noqa: E731  (the chosen member's prediction)
    for mode, members in (("batch", jnp.asarray(2)), ("rollout", jnp.array([0, 1, 2, 1]))):
        plain = ModelEnv(reward, None, member_mode=mode)
        env = ModelEnv(reward, None, member_mode=mode, disagreement_penalty=0.5)
        nxt0, rew0, _ = plain.step_members(ens, norm, obs, act, members)
        nxt, rew, term = env.step_members(ens, norm, obs, act, members)
        np.testing.assert_allclose(np.asarray(nxt), np.asarray(nxt0))  # the same member's step
        np.testing.assert_allclose(np.asarray(rew), np.asarray(rew0) - 0.5 * 3.0, rtol=1e-6)
        assert not bool(term.any())
    both = ModelEnv(lambda s, a, s2: jnp.ones(4), None, halt_threshold=2.9, halt_penalty=10.0, disagreement_penalty=2.0)
    np.testing.assert_allclose(np.asarray(both.step_members(ens, norm, obs, act, jnp.asarray(0))[1]), 1.0 - 6.0 - 10.0)


def test_mopo_step_samples_an_elite_and_penalizes_by_lambda_u():
    # two Gaussian members, σ² = 1 and 4 (normalized units) on a 1-d state; delta_std 0.5
    ens = _constant_members([[1.0], [-1.0]], probabilistic=True, logvars=[[0.0], [np.log(4.0)]])
    norm = N.identity_normalization(1, 1)._replace(delta_std=jnp.array([0.5]))
    env = ModelEnv(lambda s, a, s2: jnp.full(s.shape[0], 7.0), None)
    obs, act = jnp.zeros((2000, 1)), jnp.zeros((2000, 1))
    nxt, rew, term, u = penalized_step(ens, norm, jnp.array([1]), obs, act, jax.random.PRNGKey(0), env, 2.0)
    np.testing.assert_allclose(np.asarray(u), 0.5 * 2.0, rtol=1e-5)  # max_k σ_k·0.5 = 2·0.5
    np.testing.assert_allclose(np.asarray(rew), 7.0 - 2.0 * 1.0, rtol=1e-5)
    s = np.asarray(nxt)[:, 0]  # elite 1 only: s' = 0.5·(−1 + 2ε) ~ N(−0.5, 1²)
    assert abs(s.mean() + 0.5) < 0.08 and abs(s.std() - 1.0) < 0.06
    assert not bool(term.any())


def test_model_rollout_keeps_each_row_up_to_its_first_termination():
    ens = _constant_members([[1.0]], probabilistic=True, logvars=[[-20.0]])  # s' = s + 1, no noise to speak of
    norm = N.identity_normalization(1, 1)
    env = ModelEnv(lambda s, a, s2: s2[:, 0], lambda s2: s2[:, 0] >= 3.0)
    starts = jnp.array([[0.0], [1.5], [5.0]])  # terminate after 3 steps, 2 steps, and at once
    actor = [{"w": jnp.zeros((1, 2)), "b": jnp.zeros(2)}]
    rows, count, info = model_rollout(actor, ens, norm, jnp.array([0]), starts, jax.random.PRNGKey(0), env=env,
                                      spec=Spec.of(1, 1, -1, 1), horizon=4, penalty_coef=0.0, log_std_min=-5.0,
                                      log_std_max=0.0)
    assert int(count) == 3 + 2 + 1
    obs = np.asarray(rows.observations)[:6, 0]
    assert sorted(np.round(obs, 3)) == sorted([0.0, 1.0, 2.0, 1.5, 2.5, 5.0])
    assert np.asarray(rows.terminals)[:6].sum() == 3
    assert float(info["terminated_fraction"]) == 1.0


def test_add_rows_writes_the_first_count_rows_and_keeps_the_rest_of_the_ring():
    rb = ReplayBuffer(1, 1, capacity=5)
    rows = lambda v: Batch(*(jnp.full((3,) + s, v, jnp.float32) for s in ((1,), (1,), (), (1,), (), (1,))))  # noqa
    rb.add_rows(rows(1.0), 3)
    rb.add_rows(rows(2.0), 1)
    rb.add_rows(rows(3.0), 2)  # wraps: slot 4, then slot 0; slot 1 (would be the third row) keeps its 1.0
    np.testing.assert_array_equal(np.asarray(rb.data.rewards), [3.0, 1.0, 1.0, 2.0, 3.0])
    assert (len(rb), rb.ptr) == (5, 1)


class _Recorder:
    def update(self, state, batch):
        return state._replace(step=state.step + 1), {"real_share": jnp.mean(batch.rewards)}


class _State(NamedTuple):
    step: jax.Array
    key: jax.Array


def test_mixed_minibatches_take_exactly_n_real_rows_from_the_data():
    real = Batch(*(jnp.ones((10,) + s) for s in ((2,), (1,), (), (2,), (), (1,))))
    model = Batch(*(jnp.zeros((50,) + s) for s in ((2,), (1,), (), (2,), (), (1,))))
    _, info = update_many_mixed(_Recorder(), _State(jnp.asarray(0), jax.random.PRNGKey(0)), real, model,
                                jnp.asarray(20), 7, 256, 13)
    assert float(info["real_share"]) == pytest.approx(13 / 256)


def test_a_probabilistic_ensemble_learns_where_the_data_is_noisy():
    """s' = s + a + σ(s)·ε with σ = 0.05 for s < 0 and 0.5 for s > 0: the members' predicted σ must tell them
    apart (ratio near 10) while the deterministic members' MSE cannot."""
    rng = np.random.default_rng(0)
    n = 6000
    s, a = rng.uniform(-1, 1, (n, 1)), rng.uniform(-1, 1, (n, 1))
    sigma = np.where(s < 0, 0.05, 0.5)
    s2 = s + a + sigma * rng.normal(size=(n, 1))
    cfg = D.DynamicsConfig(ensemble_size=3, hidden=32, batch_size=200, epochs=60, val_every=5, patience=20,
                           probabilistic=True, activation="swish")
    data = tuple(x.astype(np.float32) for x in (s, a, s2))
    norm = N.fit_normalization(*data)
    state = D.ensemble_init(jax.random.PRNGKey(0), 1, 1, cfg)
    state, report = D.fit(state, norm, tuple(x[:5000] for x in data), tuple(x[5000:] for x in data),
                          jax.random.PRNGKey(1), cfg)
    probe = np.array([[-0.5], [0.5]], np.float32)
    x = N.normalize_inputs(norm, jnp.asarray(probe), jnp.zeros((2, 1)))
    _, logvar = P.apply_all(state.params, x, "swish")
    std = np.exp(0.5 * np.asarray(logvar))[..., 0] * float(norm.delta_std[0])  # [K, 2] in data units
    ratio = std[:, 1] / std[:, 0]
    print("learned std (members x [s<0, s>0]):", std)
    assert np.all((ratio > 5) & (ratio < 20)), std
    assert np.all(np.abs(std[:, 1] - 0.5) < 0.15), std
    assert len(D.elites_of(report.best_val, 2)) == 2


def _run(script, algorithm, run, *extra):
    cmd = [sys.executable, str(ROOT / script), "--env", "hopper", "--preset", "smoke", "--algorithm", algorithm,
           "--log_dir", str(run), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_mopo_offline_smoke_run_logs_the_penalty_and_exports_a_sac_policy(hopper_data, tmp_path):
    r = _run("offline.py", "mopo", tmp_path / "run", "--data_path", str(hopper_data), "--rollout_length", "3",
             "--set", "algo.penalty_coef=0.5")
    assert r.returncode == 0, r.stderr[-2000:]
    params = json.loads((tmp_path / "run" / "params.json").read_text())
    assert params["agent"]["rollout_length"] == 3 and params["agent"]["penalty_coef"] == 0.5
    assert params["dynamics"]["probabilistic"] is True
    rows = list((tmp_path / "run" / "progress.csv").read_text().splitlines())
    header = rows[0].split(",")
    last = dict(zip(header, rows[-1].split(",")))
    assert float(last["penalty_mean"]) > 0 and int(float(last["model_transitions"])) > 0
    policy = json.loads((tmp_path / "run" / "policy_final" / "policy.json").read_text())
    assert policy["kind"] == "tanh_gaussian"


def test_morel_records_its_threshold_and_halts_some_rollouts(hopper_data, tmp_path):
    r = _run("offline.py", "morel", tmp_path / "run", "--data_path", str(hopper_data), "--pessimism_coef", "50")
    assert r.returncode == 0, r.stderr[-2000:]
    from bremen.io.checkpoint import load_checkpoint
    _, meta = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert meta["halt_threshold"] > 0
    params = json.loads((tmp_path / "run" / "params.json").read_text())
    assert params["flags"]["use_s_0"] and params["trpo"]["gamma"] == 0.999 and params["agent"]["pessimism"] == 50


@pytest.mark.parametrize("args, fragment", [
    (["--algorithm", "mopo", "--set", "algo.real_ratio=2"], "real_ratio"),
    (["--algorithm", "morel", "--pessimism_coef", "0"], "pessimism"),
    (["--algorithm", "bremen", "--rollout_length", "3"], "--rollout_length is an option of mopo"),
    (["--algorithm", "mopo", "--onpol_iters", "5"], "use --set algo.epochs"),
    (["--disagreement_penalty", "-1"], "--disagreement_penalty must be >= 0"),
    (["--algorithm", "mopo", "--disagreement_penalty", "1"], "MOPO's own is --penalty_coeff"),
])
def test_bad_settings_are_one_line_errors(args, fragment, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "offline.py"), "--env", "hopper", "--preset", "smoke",
                        "--log_dir", str(tmp_path / "r"), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2 and fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "r").exists()


def test_mopo_takes_its_medium_config_offline_and_its_medium_replay_config_in_a_recursive_run():
    from bremen.algos import mopo, registry
    offline = registry.agent_config("mopo", "cpu", task="half_cheetah")
    recursive = registry.agent_config("mopo", "cpu", task="half_cheetah", recursive=True)
    assert (offline.rollout_length, offline.penalty_coef) == (1, 1.0)
    assert (recursive.rollout_length, recursive.penalty_coef) == (5, 1.0)
    assert registry.agent_config("mopo", "cpu", task="hopper", recursive=True).penalty_coef == 1.0
    assert registry.agent_config("mopo", "cpu", task="hopper").penalty_coef == 5.0
    given = registry.agent_config("mopo", "cpu", {"rollout_length": 2}, task="half_cheetah", recursive=True)
    assert given.rollout_length == 2  # the user's option over the per-task value
    assert set(mopo.RECURSIVE_TASKS) == set(mopo.TASKS)


def test_disagreement_penalty_reaches_bremens_imaginary_rewards(hopper_data, tmp_path):
    runs = {}
    for name, extra in (("plain", []), ("penalized", ["--disagreement_penalty", "100"])):
        r = _run("offline.py", "bremen", tmp_path / name, "--data_path", str(hopper_data), *extra)
        assert r.returncode == 0, r.stderr[-2000:]
        lines = (tmp_path / name / "progress.csv").read_text().splitlines()
        runs[name] = [dict(zip(lines[0].split(","), row.split(","))) for row in lines[1:]]
    params = json.loads((tmp_path / "penalized" / "params.json").read_text())
    assert params["flags"]["disagreement_penalty"] == 100
    # the same seed, model and BC start: the first outer iteration's imagined rewards differ by the penalty alone
    plain, penalized = (float(runs[k][0]["imagined_return"]) for k in ("plain", "penalized"))
    assert penalized < plain - 1.0, (plain, penalized)
