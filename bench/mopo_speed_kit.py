"""OfflineRL-Kit's side of bench/mopo_speed.py: run by it as a child process in bench/.offlinerlkit-venv (torch,
the kit's source tree), never imported by bremen's venv. It builds MOPOPolicy as the kit's run_example/run_mopo.py
does, loads bremen's ensemble weights into it, times SAC updates and model rollouts per torch thread count, counts
their matmul FLOPs, and prints one JSON line. What is timed and why: bench/mopo_speed.py's docstring.

    bench/.offlinerlkit-venv/bin/python bench/mopo_speed_kit.py --npz DATA.npz --ens ENSEMBLE.npz --threads 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from mopo_speed import (ACT_DIM, BATCH, ELITES, ENSEMBLE, HIDDEN, HIDDEN_SAC, HORIZON, LAYERS, N_MODEL, N_REAL,
                        N_REAL_KIT, OBS_DIM, PENALTY, ROLLOUT_BATCH, SAC_UPDATES, WEIGHT_DECAYS)


def import_kit() -> tuple:
    """The measured OfflineRL-Kit classes, imported from its source tree (on the venv's path) without running the
    ``offlinerlkit.dynamics`` and ``offlinerlkit.policy`` package __init__s: those import every dynamics/policy
    module, among them mujoco_oracle_dynamics (gym.envs.mujoco, mujoco) and, through the policies, gym. The two
    packages are entered as empty package modules on the tree's folders, and the names their submodules import
    from them (BaseDynamics, BasePolicy, SACPolicy) are set from the real submodules. Stubbed, being unused by
    the measured code: ``offlinerlkit.utils.logger`` (imports tensorboard; EnsembleDynamics imports its Logger
    only for train(), not measured) and ``gym`` (policy/model_based/mopo.py imports it and uses none of it).
    Returns (namespace of classes, list of what was stubbed)."""
    import importlib.util
    import types

    import offlinerlkit  # its __init__ imports only offlinerlkit.buffer (numpy, torch)

    root = Path(offlinerlkit.__file__).parent
    stubbed = []

    def package(name):
        mod = types.ModuleType(name)
        mod.__path__ = [str(root / name.split(".")[-1])]
        sys.modules[name] = mod
        setattr(offlinerlkit, name.split(".")[-1], mod)
        return mod

    if importlib.util.find_spec("gym") is None:
        sys.modules["gym"] = types.ModuleType("gym")
        stubbed.append("gym (empty module; imported, unused, by offlinerlkit/policy/model_based/mopo.py)")
    import offlinerlkit.utils  # empty __init__

    logger = types.ModuleType("offlinerlkit.utils.logger")
    logger.Logger = type("Logger", (), {})
    sys.modules["offlinerlkit.utils.logger"] = logger
    stubbed.append("offlinerlkit.utils.logger (Logger: an empty class; the real one imports tensorboard and is "
                   "used only by EnsembleDynamics.train)")

    dyn = package("offlinerlkit.dynamics")
    from offlinerlkit.dynamics.base_dynamics import BaseDynamics
    dyn.BaseDynamics = BaseDynamics
    from offlinerlkit.dynamics.ensemble_dynamics import EnsembleDynamics

    pol = package("offlinerlkit.policy")
    from offlinerlkit.policy.base_policy import BasePolicy
    pol.BasePolicy = BasePolicy
    from offlinerlkit.policy.model_free.sac import SACPolicy
    pol.SACPolicy = SACPolicy
    from offlinerlkit.policy.model_based.mopo import MOPOPolicy

    from offlinerlkit.buffer import ReplayBuffer
    from offlinerlkit.modules import ActorProb, Critic, EnsembleDynamicsModel, TanhDiagGaussian
    from offlinerlkit.nets import MLP
    from offlinerlkit.utils.scaler import StandardScaler
    from offlinerlkit.utils.termination_fns import get_termination_fn

    ns = types.SimpleNamespace(EnsembleDynamics=EnsembleDynamics, MOPOPolicy=MOPOPolicy, ReplayBuffer=ReplayBuffer,
                               ActorProb=ActorProb, Critic=Critic, EnsembleDynamicsModel=EnsembleDynamicsModel,
                               TanhDiagGaussian=TanhDiagGaussian, MLP=MLP, StandardScaler=StandardScaler,
                               get_termination_fn=get_termination_fn, root=str(root))
    return ns, stubbed


def kit_build(kit, data, ens, device: str = "cpu"):
    """MOPOPolicy, its dynamics and buffers, as run_example/run_mopo.py builds them (sizes above)."""
    import torch

    obs_dim, act_dim = OBS_DIM, ACT_DIM
    actor_backbone = kit.MLP(input_dim=obs_dim, hidden_dims=list(HIDDEN_SAC))
    critic1_backbone = kit.MLP(input_dim=obs_dim + act_dim, hidden_dims=list(HIDDEN_SAC))
    critic2_backbone = kit.MLP(input_dim=obs_dim + act_dim, hidden_dims=list(HIDDEN_SAC))
    dist = kit.TanhDiagGaussian(latent_dim=actor_backbone.output_dim, output_dim=act_dim, unbounded=True,
                                conditioned_sigma=True, max_mu=1.0)
    actor = kit.ActorProb(actor_backbone, dist, device)
    critic1, critic2 = kit.Critic(critic1_backbone, device), kit.Critic(critic2_backbone, device)
    actor_optim = torch.optim.Adam(actor.parameters(), lr=1e-4)
    critic1_optim = torch.optim.Adam(critic1.parameters(), lr=3e-4)
    critic2_optim = torch.optim.Adam(critic2.parameters(), lr=3e-4)
    log_alpha = torch.zeros(1, requires_grad=True, device=device)
    alpha = (-float(act_dim), log_alpha, torch.optim.Adam([log_alpha], lr=1e-4))

    model = kit.EnsembleDynamicsModel(obs_dim=obs_dim, action_dim=act_dim, hidden_dims=[HIDDEN] * LAYERS,
                                      num_ensemble=ENSEMBLE, num_elites=ELITES, weight_decays=WEIGHT_DECAYS,
                                      device=device)
    load_bremen_ensemble(model, ens)
    scaler = kit.StandardScaler()
    scaler.fit(np.concatenate([data["real_observations"], data["real_actions"]], axis=-1))
    dynamics = kit.EnsembleDynamics(model, torch.optim.Adam(model.parameters(), lr=1e-3), scaler,
                                    kit.get_termination_fn(task="hopper-medium-v2"), penalty_coef=PENALTY)
    model.eval()
    policy = kit.MOPOPolicy(dynamics, actor, critic1, critic2, actor_optim, critic1_optim, critic2_optim,
                            tau=0.005, gamma=0.99, alpha=alpha)

    def buffer(prefix, n):
        b = kit.ReplayBuffer(buffer_size=n, obs_shape=(obs_dim,), obs_dtype=np.float32, action_dim=act_dim,
                             action_dtype=np.float32, device=device)
        b.add_batch(obss=data[f"{prefix}_observations"], next_obss=data[f"{prefix}_next_observations"],
                    actions=data[f"{prefix}_actions"], rewards=data[f"{prefix}_rewards"][:, None],
                    terminals=data[f"{prefix}_terminals"][:, None])
        return b

    return policy, dynamics, buffer("real", N_REAL), buffer("model", N_MODEL)


def load_bremen_ensemble(model, ens):
    """bremen's member weights into the kit's EnsembleLinear layers (both [K, in, out]); the output layer folded
    with bremen's denormalization so the kit's raw-delta outputs equal bremen's denormalized ones, the kit's extra
    reward unit (mean and log-variance) with zero weights."""
    import torch

    n = int(ens["n_layers"])
    layers = list(model.backbones) + [model.output_layer]
    assert len(layers) == n
    d = OBS_DIM
    mu_d, sd_d = ens["delta_mean"], ens["delta_std"]
    with torch.no_grad():
        for i, layer in enumerate(layers[:-1]):
            layer.weight.copy_(torch.as_tensor(ens[f"w{i}"]))
            layer.bias.copy_(torch.as_tensor(ens[f"b{i}"])[:, None, :])
        w, b = ens[f"w{n - 1}"], ens[f"b{n - 1}"]  # [K, h, 2d], [K, 2d]: mean | raw log-variance (normalized units)
        k, h, _ = w.shape
        w_out = np.zeros((k, h, 2 * (d + 1)), np.float32)
        b_out = np.zeros((k, 2 * (d + 1)), np.float32)
        w_out[:, :, :d] = w[:, :, :d] * sd_d
        b_out[:, :d] = b[:, :d] * sd_d + mu_d
        w_out[:, :, d + 1:2 * d + 1] = w[:, :, d:]
        b_out[:, d + 1:2 * d + 1] = b[:, d:] + 2.0 * np.log(sd_d)
        b_out[:, 2 * d + 1] = 2.0 * np.log(sd_d.mean())  # the reward unit's log-variance
        model.output_layer.weight.copy_(torch.as_tensor(w_out))
        model.output_layer.bias.copy_(torch.as_tensor(b_out)[:, None, :])
        for layer in layers:
            layer.update_save(list(range(k)))


def kit_child(args):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    t_start = time.perf_counter()
    kit, stubbed = import_kit()
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    data = dict(np.load(args.npz))
    ens = dict(np.load(args.ens))
    policy, dynamics, real_buffer, fake_buffer = kit_build(kit, data, ens)
    policy.train()
    starts = data["starts"]
    n_fake = BATCH - N_REAL_KIT

    def update():
        t0 = time.perf_counter()
        batch = {"real": real_buffer.sample(batch_size=N_REAL_KIT), "fake": fake_buffer.sample(batch_size=n_fake)}
        t1 = time.perf_counter()
        loss = policy.learn(batch)
        return t1 - t0, time.perf_counter() - t1, loss

    out = {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
           "kit_root": kit.root, "stubbed": stubbed, "affinity_cores": len(os.sched_getaffinity(0)),
           "torch_interop_threads": torch.get_num_interop_threads(), "real_rows_per_batch": N_REAL_KIT,
           "fake_rows_per_batch": n_fake, "per_threads": {}}
    for k in [int(v) for v in args.threads.split(",")]:
        torch.set_num_threads(k)
        for _ in range(args.warmup_updates):
            update()
        sample_s = learn_s = 0.0
        cap = float("inf") if k == 1 else args.sac_max_seconds
        done = 0
        while done < args.updates and sample_s + learn_s < cap:
            s, l, loss = update()
            sample_s += s
            learn_s += l
            done += 1
        policy.rollout(starts[:5000], HORIZON)  # untimed warm-up at this thread count
        rates, transitions, reward_means = [], [], []
        for _ in range(args.rollout_calls):
            t0 = time.perf_counter()
            _, info = policy.rollout(starts, HORIZON)
            rates.append(ROLLOUT_BATCH * HORIZON / (time.perf_counter() - t0))
            transitions.append(int(info["num_transitions"]))
            reward_means.append(float(info["reward_mean"]))
        out["per_threads"][str(k)] = {
            "torch_num_threads": torch.get_num_threads(), "timed_updates": done, "requested_updates": args.updates,
            "capped": done < args.updates, "sample_s": sample_s, "learn_s": learn_s,
            "updates_per_s": done / (sample_s + learn_s), "learn_only_updates_per_s": done / learn_s,
            "last_loss": loss,
            "rollout_steps_per_s_per_call": rates, "rollout_steps_per_s": statistics.median(rates),
            "rollout_transitions": transitions,
            "mean_rollout_length": statistics.mean(transitions) / ROLLOUT_BATCH,
            "rollout_reward_mean": reward_means}
    # matmul FLOPs (forward and backward), torch's dispatch-level counter
    batch = {"real": real_buffer.sample(batch_size=N_REAL_KIT), "fake": fake_buffer.sample(batch_size=n_fake)}
    counter = FlopCounterMode(display=False)
    with counter:
        policy.learn(batch)
    out["matmul_flops_per_update"] = int(counter.get_total_flops())
    rows = 2000
    counter = FlopCounterMode(display=False)
    with counter:
        dynamics.step(starts[:rows], policy.select_action(starts[:rows]))
    out["matmul_flops_per_rollout_row_step"] = counter.get_total_flops() / rows
    out["params"] = {"actor": sum(p.numel() for p in policy.actor.parameters()),
                     "q": sum(p.numel() for c in (policy.critic1, policy.critic2) for p in c.parameters()),
                     "ensemble_weights_biases": sum(l.weight.numel() + l.bias.numel() for l in
                                                    list(dynamics.model.backbones) + [dynamics.model.output_layer])}
    out["child_s"] = time.perf_counter() - t_start
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--npz", required=True, help="the data and rollout start states (mopo_speed.make_data)")
    p.add_argument("--ens", required=True, help="bremen's ensemble weights and normalization (BremenBench)")
    p.add_argument("--threads", required=True, help="comma list of torch thread counts, timed in this order")
    p.add_argument("--updates", type=int, default=SAC_UPDATES, help="timed SAC updates per thread count")
    p.add_argument("--warmup-updates", type=int, default=20)
    p.add_argument("--rollout-calls", type=int, default=2, help="timed rollouts per thread count")
    p.add_argument("--sac-max-seconds", type=float, default=float("inf"),
                   help="wall-clock cap of the SAC timing with more than one torch thread")
    p.add_argument("--seed", type=int, default=0)
    kit_child(p.parse_args())


if __name__ == "__main__":
    main()
