"""``bremen tasks``: list the built-in tasks; ``--check N`` verifies env reward/termination vs the task functions."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("tasks", help="list the built-in tasks (dims, horizon, random return)")
    p.add_argument("--task", help="only this task (a built-in name or any gymnasium id)")
    p.add_argument("--check", type=int, metavar="N", default=0,
                   help="also step each env N times with random actions and compare its reward and "
                        "termination with the task's functions")
    p.set_defaults(func=main)


def main(args) -> int:
    import bremen.tasks as T
    from bremen.errors import UserError

    if args.check < 0:
        raise UserError(f"--check must be a number of transitions >= 0, got {args.check}")
    tasks = [T.make(args.task)] if args.task else [T.make(n) for n in T.names()]
    head = f"{'task':<14}{'obs':>5}{'act':>5}{'horizon':>9}{'random return':>15}"
    if args.check:
        head += f"{'max|dr|':>11}{'term agree':>12}{'#term':>7}"
    print(head + "  description")
    for t in tasks:
        rr = "-" if t.random_return is None else f"{t.random_return:.1f}"
        line = f"{t.name:<14}{t.obs_dim:>5}{t.act_dim:>5}{t.horizon:>9}{rr:>15}"
        if args.check:
            if t.known_reward:
                from bremen.tasks.check import agreement

                a = agreement(t, args.check)
                line += f"{a['max_abs_reward_error']:>11.2e}{a['termination_agreement']:>12.4f}{a['terminations']:>7}"
            else:
                line += f"{'unknown':>11}{'-':>12}{'-':>7}"
        print(f"{line}  {t.description}")
    return 0
