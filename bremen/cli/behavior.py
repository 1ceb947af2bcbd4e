"""``bremen train-behavior`` (SAC behavior policies trained to a target) and ``bremen collect`` (datasets)."""

from __future__ import annotations

from bremen.errors import UserError
from bremen.flags import NOISES


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train-behavior",
        help="train a SAC behavior policy online until it reaches a target return",
        description="Train SAC (BRAC's recipe) online on TASK. Every --eval-every env steps the deterministic "
        "policy is evaluated; the first policy whose two consecutive evaluations reach --eval-target is saved as "
        "OUT/partial_target/ (the policy to collect data with), the best as OUT/policy_best/, the last as "
        "OUT/policy_final/. "
        "A checkpoint after every evaluation lets --resume continue a killed run.",
    )
    p.add_argument("--task", required=True, help="task name, e.g. hopper (see `bremen tasks`)")
    p.add_argument("--eval-target", type=float, help="target return R (required unless --resume)")
    p.add_argument("--steps", type=int, help="total env steps incl. warm-up (default 1000000; with --resume: "
                   "the run's own, or a new total to extend it)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random stream (default 0)")
    p.add_argument("--out", help="run folder (default log/behavior/<task>/seed<S>/)")
    p.add_argument("--resume", action="store_true", help="continue the run in the out folder from its checkpoint")
    p.add_argument("--force", action="store_true", help="delete an earlier run in the out folder and start afresh")
    p.add_argument("--eval-every", type=int, default=5000, help="env steps between evaluations (default 5000)")
    p.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation (default 10)")
    p.add_argument("--update-every", type=int, default=50,
                   help="K env steps, then K SAC updates in one compiled call (default 50; 1 = interleaved)")
    p.add_argument("--stop-at-target", action="store_true",
                   help="end the run as soon as the partial-target policy is saved (saves time on a small machine)")
    p.add_argument("--preset", choices=("brac", "smoke"), default="brac",
                   help="brac: BRAC's SAC (default); smoke: tiny networks and warm-up, for tests")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train_behavior)

    c = sub.add_parser(
        "collect",
        help="collect a dataset with a behavior policy and a BRAC noise strategy",
        description="Run a behavior policy on TASK and write N transitions to an HDF5 dataset (D4RL keys). "
        "Noise strategies (BRAC): pure = policy samples; eps1/eps3/gaussian1/gaussian3 = 20% uniform random, "
        "40% policy samples, 40% noisy samples (epsilon-greedy 0.1/0.3 or Gaussian sigma 0.1/0.3); "
        "random = uniform actions. The file appears only when complete.",
    )
    c.add_argument("--task", required=True, help="task name, e.g. hopper")
    c.add_argument("--noise", required=True, choices=NOISES)
    c.add_argument("--n", type=int, required=True, help="number of transitions")
    c.add_argument("--policy", help="policy folder (default: the shipped weights/<task>/)")
    c.add_argument("--seed", type=int, default=0, help="seed of the env resets and all sampling (default 0)")
    c.add_argument("--out", required=True, help="dataset file to write (.h5)")
    c.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    c.add_argument("--created", help="creation time to record (ISO 8601); fix it to make repeated runs byte-identical")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=run_collect)


def run_collect(args) -> int:
    from bremen.data.collect import run_collect as collect

    s = collect(args.task, args.noise, args.n, args.out, args.policy, args.seed, args.force, args.created,
                progress=not args.no_progress)
    print(f"wrote {s['path']}: {s['n']} transitions, {s['episodes']} episodes, "
          f"{s['seconds']:.1f} s ({s['per_second']:.0f} transitions/s)")
    return 0


def run_train_behavior(args) -> int:
    from bremen.experiment import online_config
    from bremen.run import online

    progress = not args.no_progress
    if args.resume:
        if args.force:
            raise UserError("--resume and --force contradict each other; give one of them")
        out = args.out or online.default_out_dir(args.task, args.seed)
        summary = online.resume_online(out, steps=args.steps, task=args.task, progress=progress)
    else:
        summary = online.train_online(online_config(args), args.out, force=args.force, progress=progress)
    pt = summary.get("partial_target")
    print(
        f"done: {summary['env_steps']} env steps; best eval {summary['best_return']:.1f} at step "
        f"{summary['best_step']}; "
        + (f"target reached at step {pt['step']} (eval {pt['mean']:.1f})" if pt else "target not reached")
    )
    return 0
