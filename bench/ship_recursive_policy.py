"""Ship a recursive run's final policy as weights/<task>/recursive/ (what BREMEN learned from scratch).

    .venv/bin/python bench/ship_recursive_policy.py log/recursive/half_cheetah/bremen/seed1 "NOTE"

Copies the run's last ``policy_deployment<d>/`` (its 10-episode evaluation on shared env seeds is the recorded
return) and adds the command that made it, the deployments, the real samples and the note to policy.json.
"""

import csv
import json
import sys
from pathlib import Path

from bremen.io.policy_io import load_policy, save_policy


def main() -> None:
    run, note = Path(sys.argv[1]), sys.argv[2]
    params = json.loads((run / "params.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    last = summary["deployments"] - 1
    policy = load_policy(run / f"policy_deployment{last}")
    f = params["flags"]
    command = (f"python recursive.py --env {params['task']} --preset {params['preset']} --seed {params['seed']} "
               f"--algorithm {f['algorithm']}")
    row = list(csv.DictReader(open(run / "deployments.csv")))[-1]
    ret = {**policy.metadata["return"], "stderr": float(row["final_return_stderr"])}
    meta = {**policy.metadata, "return": ret, "script": "recursive", "preset": params["preset"], "seed": params["seed"],
            "deployments": summary["deployments"], "real_samples": summary["real_samples"],
            "batch_size": summary["batch_size"], "command": command, "note": note}
    out = Path("weights") / params["task"] / "recursive"
    save_policy(out, policy, meta)
    print(f"{out}: return {meta['return']}")


if __name__ == "__main__":
    main()
