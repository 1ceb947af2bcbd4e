"""Child of bench/baselines_vs_d3rlpy.py: d3rlpy 2.8.1's update speed at its default config.

Runs in bench/.d3rlpy-venv (made by bench/d3rlpy_setup.sh), never in bremen's venv. Reads the npz dataset
written by the parent, builds ``d3rlpy.algos.{BC,BCQ,BEAR}Config()`` (defaults untouched) on device
"cpu:0", ``build_with_dataset`` on an MDPDataset of the same arrays, then for each torch thread count:

* draws n minibatches (``--n-updates-k1`` for 1 thread, ``--n-updates-k2`` otherwise) with
  ``dataset.sample_transition_batch(config.batch_size)`` (as ``fit`` does; timed apart as ``sample_s``),
* runs ``--warmup`` untimed ``algo.update(batch)`` calls on other batches, then times the n calls of
  ``algo.update(batch)`` (``update_s``; includes d3rlpy's numpy -> torch batch conversion, the
  gradient steps and the target updates, exactly what ``fit`` calls per step); with more than one thread
  the timing stops early after ``--k2-max-seconds`` (``timed_updates`` says how many were timed).

For BEAR the grad step is set to ``warmup_steps`` (40000) first, so every update is a post-warm-up
update (full actor loss with Q and MMD terms), not the cheap MMD-only warm-up update.

One more update runs under ``torch.utils.flop_counter.FlopCounterMode``: ``matmul_flops_per_update`` (the
matrix products of the forward and backward passes, 2·m·n·k each), the work one update does.

Prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--npz", required=True)
    p.add_argument("--algo", required=True, choices=("bc", "bcq", "bear"))
    p.add_argument("--threads", default="1,2")
    p.add_argument("--n-updates-k1", type=int, default=1000, help="updates timed with 1 thread")
    p.add_argument("--n-updates-k2", type=int, default=1000, help="updates timed with 2 (or more) threads")
    p.add_argument("--k2-max-seconds", type=float, default=float("inf"),
                   help="stop timing the >= 2-thread run after this many seconds (it is 30-100x slower here)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch
    import d3rlpy

    d3rlpy.seed(args.seed)
    data = np.load(args.npz)
    dataset = d3rlpy.dataset.MDPDataset(
        observations=data["observations"], actions=data["actions"], rewards=data["rewards"],
        terminals=data["terminals"], timeouts=data["timeouts"],
        action_space=d3rlpy.ActionSpace.CONTINUOUS)
    configs = {"bc": d3rlpy.algos.BCConfig, "bcq": d3rlpy.algos.BCQConfig, "bear": d3rlpy.algos.BEARConfig}
    config = configs[args.algo]()
    algo = config.create(device="cpu:0")
    algo.build_with_dataset(dataset)
    post_warmup_from = None
    if args.algo == "bear":
        post_warmup_from = config.warmup_steps
        algo.set_grad_step(config.warmup_steps)

    out = {"algo": args.algo, "batch_size": config.batch_size, "config": _config_facts(args.algo, config),
           "transitions": int(dataset.transition_count), "episodes": int(len(dataset.episodes)),
           "warmup_updates": args.warmup, "post_warmup_from_grad_step": post_warmup_from,
           "torch": torch.__version__, "d3rlpy": d3rlpy.__version__,
           "torch_interop_threads": torch.get_num_interop_threads(), "param_counts": _param_counts(algo),
           "per_threads": {}}
    for k in [int(v) for v in args.threads.split(",")]:
        torch.set_num_threads(k)
        n = args.n_updates_k1 if k == 1 else args.n_updates_k2
        cap = float("inf") if k == 1 else args.k2_max_seconds
        warm = [dataset.sample_transition_batch(config.batch_size) for _ in range(args.warmup)]
        t0 = time.perf_counter()
        batches = [dataset.sample_transition_batch(config.batch_size) for _ in range(n)]
        sample_s = time.perf_counter() - t0
        for b in warm:  # untimed
            algo.update(b)
        grad_step0 = algo.grad_step
        done = 0
        t0 = time.perf_counter()
        for b in batches:
            loss = algo.update(b)
            done += 1
            if time.perf_counter() - t0 > cap:
                break
        update_s = time.perf_counter() - t0
        sample_s *= done / n
        out["per_threads"][str(k)] = {
            "torch_num_threads": torch.get_num_threads(), "timed_updates": done, "requested_updates": n,
            "capped": done < n, "update_s": update_s, "sample_s": sample_s,
            "updates_per_s": done / update_s,
            "fit_loop_updates_per_s": done / (update_s + sample_s),
            "grad_step_start": grad_step0, "grad_step_end": algo.grad_step,
            "last_loss": {key: float(v) for key, v in loss.items()}}
    # matrix-product FLOPs of one update (forward and backward), counted by torch's dispatch-level counter
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        algo.update(dataset.sample_transition_batch(config.batch_size))
    out["matmul_flops_per_update"] = int(counter.get_total_flops())
    print(json.dumps(out))


def _config_facts(algo: str, c) -> dict:
    keys = {"bc": ("batch_size", "learning_rate", "policy_type"),
            "bcq": ("batch_size", "actor_learning_rate", "critic_learning_rate", "imitator_learning_rate", "lam",
                    "action_flexibility", "beta", "n_action_samples", "n_critics", "rl_start_step"),
            "bear": ("batch_size", "actor_learning_rate", "critic_learning_rate", "imitator_learning_rate",
                     "temp_learning_rate", "alpha_learning_rate", "n_mmd_action_samples", "mmd_kernel", "mmd_sigma",
                     "n_target_samples", "n_action_samples", "warmup_steps", "lam", "vae_kl_weight",
                     "alpha_threshold", "n_critics")}[algo]
    facts = {k: getattr(c, k) for k in keys}
    import d3rlpy
    enc = c.encoder_factory if algo == "bc" else c.actor_encoder_factory
    facts["encoder_factory"] = type(enc).__name__
    # DefaultEncoderFactory builds a VectorEncoderFactory (defaults) for vector observations.
    facts["vector_encoder_hidden_units"] = list(d3rlpy.models.encoders.VectorEncoderFactory().hidden_units)
    return facts


def _param_counts(algo) -> dict:
    import dataclasses
    import torch
    out = {}
    modules = algo.impl.modules
    for f in dataclasses.fields(modules):
        m = getattr(modules, f.name)
        if isinstance(m, torch.nn.Module):
            out[f.name] = int(sum(p.numel() for p in m.parameters()))
    return out


if __name__ == "__main__":
    main()
