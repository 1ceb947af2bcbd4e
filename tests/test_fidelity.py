"""Quirks of the original that shape results: likelihood std vs sampling std, BC init copies the normalizer."""

import jax
import jax.numpy as jnp
import numpy as np

from bremen.algos.trpo import TRPOConfig, _likelihood_dist
from bremen.models.model_env import ModelEnv
from bremen.models.normalizer import running_stats_init, update
from bremen.models.policy import dist, policy_init


def test_trpo_likelihood_uses_network_sigma_while_sampling_uses_fixed_sigma():
    params = policy_init(None, 5, 2, (8, 8))
    stats = update(running_stats_init(5), np.random.default_rng(0).normal(size=(50, 5)))
    obs = jnp.asarray(np.random.default_rng(1).normal(size=(7, 5)), jnp.float32)
    mu, ls_net = dist(params, stats, obs)
    env = ModelEnv()
    mu_l, ls_l = _likelihood_dist(params, stats, obs, TRPOConfig(sampling_std=0.1, const_sampling=True), env)
    np.testing.assert_array_equal(ls_l, ls_net)  # original: ratios and KL with the network's sigma
    np.testing.assert_array_equal(mu_l, mu)
    _, ls_c = _likelihood_dist(params, stats, obs, TRPOConfig(sampling_std=0.1, const_sampling=True,
                                                              consistent_likelihood=True), env)
    np.testing.assert_allclose(ls_c, np.log(0.1), rtol=1e-6)  # the distribution actions are drawn from
    assert not np.allclose(ls_net, np.log(0.1))


def test_bc_init_copies_weights_and_normalizer(tmp_path):
    import bremen.tasks as T
    from bremen.data import Dataset, save_dataset
    from bremen.experiment import resolve
    from bremen.build import build_run
    from bremen.cli.offline import build_parser

    task = T.make("half_cheetah")
    rng = np.random.default_rng(0)
    n = 3000
    obs = rng.normal(size=(n, 17)).astype(np.float32) * 3 + 1
    act = rng.uniform(-1, 1, (n, 6)).astype(np.float32)
    timeouts = np.zeros(n, bool)
    timeouts[999::1000] = True
    ds = Dataset.from_arrays(dict(observations=obs, actions=act, rewards=np.zeros(n, np.float32),
                                  next_observations=obs + 0.01, terminals=np.zeros(n, bool), timeouts=timeouts),
                             metadata={"task": task.name})
    save_dataset(ds, str(tmp_path / "d.h5"))
    args = build_parser().parse_args(["--env", "half_cheetah", "--preset", "smoke", "--seed", "0", "--data_path",
                                      str(tmp_path / "d.h5"), "--log_dir", str(tmp_path / "run")])
    offline_run = build_run(resolve(args)[0])
    data = offline_run.plan.data_so_far(0)
    learner = offline_run.learner
    learner.fit_model(data.train, data.val)
    run = learner.optimizer
    run.fit_bc(data.all)
    run.init_policy(learner.model(), data.all)
    for a, b in zip(jax.tree.leaves(run.trpo.policy), jax.tree.leaves(run.bc.params)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(run.trpo.stats, run.bc.stats):
        np.testing.assert_array_equal(a, b)
    assert float(run.trpo.stats.count) == n  # the statistics saw every BC observation
    np.testing.assert_allclose(np.asarray(run.trpo.stats.mean), obs.mean(0), rtol=1e-4, atol=1e-4)


def test_later_deployments_warm_start_the_model_and_accumulate_bc_statistics(hopper_data, tmp_path):
    """§2.2 b-d, §8.4: the ensemble continues from its weights and Adam moments, BC restarts from its initial
    weights with statistics over every batch, BREMEN re-copies BC while ME-TRPO keeps its policy."""
    from bremen.cli.offline import build_parser
    from bremen.data import load_dataset
    from bremen.experiment import resolve
    from bremen.learners.model_based import ModelBasedLearner
    from bremen.build import learner_config
    import bremen.tasks as T

    data = load_dataset(str(hopper_data))
    first = data.subsample(3000, mode="prefix", seed=0)
    second = type(data).from_arrays({k: getattr(data, k)[3000:] for k in (
        "observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}, metadata=data.metadata)
    for algorithm, extra in (("bremen", []), ("me_trpo", ["--algorithm", "me_trpo"])):
        args = build_parser().parse_args(["--env", "hopper", "--preset", "smoke", "--data_path", str(hopper_data),
                                          "--log_dir", str(tmp_path / algorithm), *extra])
        L = ModelBasedLearner(T.make("hopper"), learner_config(resolve(args)[0]), seed=0)
        tr, va = first.split(0.15, by="order")
        M = L
        M.fit_model(tr, va)
        L = M.optimizer
        L.fit_bc(first)
        L.init_policy(M.model(), first)
        L.chunk(0, M.model())
        bc_count, policy_before = float(L.bc.stats.count), L.trpo.policy
        step_before = int(M.ens.opt_state[0].count)
        tr2, va2 = second.split(0.15, by="order")
        M.fit_model(tr2, va2, deployment=1)
        assert int(M.ens.opt_state[0].count) > step_before, "Adam moments carried over (warm start)"
        L.fit_bc(second, deployment=1)
        assert float(L.bc.stats.count) == bc_count + len(second), "BC statistics count every batch"
        L.init_policy(M.model(), second, deployment=1)
        same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(L.trpo.policy), jax.tree.leaves(policy_before)))
        copied = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(L.trpo.policy), jax.tree.leaves(L.bc.params)))
        if algorithm == "bremen":
            assert copied and not same
        else:
            assert same and not copied
        assert L.trpo.ens_params is M.ens.params
