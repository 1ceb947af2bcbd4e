"""``bremen evaluate``: the return of exported policies on their task's real env.

Takes policies in the ``weights/`` format (a shipped ``weights/<task>/``, a run's ``policy_final``,
``policy_best`` or ``policy_bc``, or a run directory, whose ``policy_final`` is used). Episode ``i`` of
every policy is reset with the same env seed, a fixed function of ``--seed`` and ``i``, so policies
compared in one call face the same start states.
"""

from __future__ import annotations

import json

from bremen.errors import UserError
from bremen.evaluation import evaluate_policy

def cmd_evaluate(args) -> int:
    from bremen.io.policy_io import load_policy, run_or_policy_dir
    from bremen.tasks import make

    if args.episodes <= 0:
        raise UserError(f"--episodes must be positive, got {args.episodes}")
    results = []
    for given in args.policies:
        path = run_or_policy_dir(given)
        policy = load_policy(path)
        task_name = args.task or policy.metadata.get("task")
        if not task_name:
            raise UserError(f"{path}: the policy does not record its task; pass --task")
        task = make(task_name)
        if (policy.obs_dim, policy.act_dim) != (task.obs_dim, task.act_dim):
            raise UserError(f"{path}: the policy takes obs {policy.obs_dim} / act {policy.act_dim} but task "
                            f"{task.name!r} has obs {task.obs_dim} / act {task.act_dim}; pass the right --task")
        res = evaluate_policy(policy, task, args.episodes, args.seed, deterministic=not args.stochastic)
        results.append({"policy": str(path), "task": task.name, **res})
        if not args.json:
            err = f" ± {res['stderr']:.1f} (s.e.)" if res["stderr"] is not None else ""
            print(f"{str(path):<48} {task.name:<13} {res['mean']:9.1f}{err}   std {res['std']:.1f}, "
                  f"min {res['min']:.1f}, max {res['max']:.1f}, {args.episodes} episodes, mean length "
                  f"{res['mean_length']:.0f}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="return of exported policies on the real env",
                       description="Evaluate policies in the weights/ format (or run directories) on their task. "
                                   "Every policy gets the same env seeds.")
    p.add_argument("policies", nargs="+", metavar="POLICY",
                   help="policy directory (policy.json + policy.npz) or run directory")
    p.add_argument("--task", default=None, help="task (default: the one recorded with the policy)")
    p.add_argument("--episodes", type=int, default=20, help="full episodes per policy (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the env resets (and of sampled actions)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic mean")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_evaluate)
