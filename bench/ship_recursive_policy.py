"""Ship a recursive run's final policy as weights/<task>/recursive/ (what BREMEN learned from scratch).

    .venv/bin/python bench/ship_recursive_policy.py RUN_DIR "NOTE" [EXTRA FLAGS ...]
    e.g. .venv/bin/python bench/ship_recursive_policy.py log/study/b100k/half_cheetah/bremen/seed0 "NOTE" \
             --batch_size 100000

Copies the run's last ``policy_deployment<d>/`` (its 10-episode evaluation on shared env seeds is the recorded
return) and adds the command that made it, the deployments, the real samples and the note to policy.json. The
command is ``recursive.py --env --preset --seed --algorithm`` plus EXTRA FLAGS (the flags of the run's plan);
it is resolved the way recursive.py would resolve it and must give the run's own flags and settings, so the
shipped command reproduces the run.
"""

import csv
import json
import shlex
import sys
from pathlib import Path

from bremen.cli.recursive import build_parser
from bremen.experiment import resolve
from bremen.io.policy_io import load_policy, save_policy
from bremen.run.directory import changed_settings


def main() -> None:
    run, note, extra = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    params = json.loads((run / "params.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    last = summary["deployments"] - 1
    policy = load_policy(run / f"policy_deployment{last}")
    args = ["--env", params["task"], "--preset", params["preset"], "--seed", str(params["seed"]),
            "--algorithm", params["flags"]["algorithm"], *extra]
    exp = resolve(build_parser().parse_args([*args, "--log_dir", str(run)]), "recursive")[0]
    changed = changed_settings(params, exp.to_dict())  # the comparison a --resume makes
    if changed:
        print(f"ship_recursive_policy: 'recursive.py {shlex.join(args)}' does not reproduce {run}: "
              f"{'; '.join(changed[:3])}; give the run's plan flags after the note", file=sys.stderr)
        sys.exit(2)
    row = list(csv.DictReader(open(run / "deployments.csv")))[-1]
    ret = {**policy.metadata["return"], "stderr": float(row["final_return_stderr"])}
    meta = {**policy.metadata, "return": ret, "script": "recursive", "preset": params["preset"], "seed": params["seed"],
            "deployments": summary["deployments"], "real_samples": summary["real_samples"],
            "batch_size": summary["batch_size"], "command": f"python recursive.py {shlex.join(args)}", "note": note}
    out = Path("weights") / params["task"] / "recursive"
    save_policy(out, policy, meta)
    print(f"{out}: return {meta['return']}")


if __name__ == "__main__":
    main()
