"""``bremen tasks``: list the built-in tasks with their dimensions."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("tasks", help="list the built-in tasks (dims, horizon, reward, random return)")
    p.add_argument("--task", help="describe one task (a built-in name or any gymnasium id)")
    p.set_defaults(func=main)


def main(args) -> int:
    import bremen.tasks as T

    tasks = [T.make(args.task)] if args.task else [T.make(n) for n in T.names()]
    print(f"{'task':<14}{'obs':>5}{'act':>5}{'horizon':>9}{'random return':>15}  description")
    for t in tasks:
        rr = "-" if t.random_return is None else f"{t.random_return:.1f}"
        print(f"{t.name:<14}{t.obs_dim:>5}{t.act_dim:>5}{t.horizon:>9}{rr:>15}  {t.description}")
    return 0
