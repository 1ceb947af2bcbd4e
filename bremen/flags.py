"""Command-line flags of ``offline.py``, ``recursive.py`` and ``save_video.py``.

Every flag of the original scripts is accepted under its original name, so the
original README's commands run unchanged. bremen adds ``--data_path``, ``--preset``, ``--resume``,
``--log_dir`` and ``--seed``. Boolean flags also have a ``--no_<flag>`` form, because the ``paper`` preset
turns on the settings of the published runs (``--bc_init --const_sampling``), which the original's own
defaults left off.
"""

from __future__ import annotations

import argparse

NOISES = ("pure", "eps1", "eps3", "gaussian1", "gaussian3", "random")
PRESETS = ("paper", "cpu", "smoke")


def _bool(parser, name: str, help: str):
    parser.add_argument(f"--{name}", dest=name, action="store_true", default=None, help=help)
    parser.add_argument(f"--no_{name}", dest=name, action="store_false", help=argparse.SUPPRESS)


def add_original_flags(p: argparse.ArgumentParser, script: str) -> None:
    """The original scripts' flags. Defaults of ``None`` mean "take the preset's / param file's value"."""
    g = p.add_argument_group("original flags")
    g.add_argument("--env", help="task: ant, half_cheetah, hopper, walker2d, cheetah_run (or any gymnasium id)")
    g.add_argument("--exp_name", default=None, help="experiment name (used in the log path)")
    g.add_argument("--sub_exp_name", default="", help="sub-folder in the log path")
    g.add_argument("--noise", default="pure", help=f"dataset variant: {', '.join(NOISES)}")
    g.add_argument("--algo", default="trpo", help="policy optimizer; only trpo exists")
    g.add_argument("--param_path", default=None, help="JSON param file (default configs/params_<env>_offline.json)")
    g.add_argument("--onpol_iters", type=int, default=None, help="outer iterations")
    g.add_argument("--interval", type=int, default=None, help="outer iterations between deployments (recursive)")
    g.add_argument("--max_path_length", type=int, default=None, help="imaginary rollout horizon H")
    g.add_argument("--trpo_batch_size", type=int, default=None, help="imaginary transitions per TRPO step")
    g.add_argument("--random_seeds", type=int, nargs="+", default=None, help="seeds, run one after another")
    g.add_argument("--n_train", type=int, default=None,
                   help="offline: dataset transitions used (a prefix); recursive: total real-data budget")
    g.add_argument("--alpha", type=float, default=None, help="KL value-penalty coefficient (0 = off)")
    g.add_argument("--target_kl", type=float, default=None, help="TRPO step size delta")
    g.add_argument("--ensemble_model_count", type=int, default=None, help="dynamics ensemble size K")
    _bool(g, "param_value", "MLP value function instead of the linear baseline")
    _bool(g, "save_variables", "also export the policy at the original's save points")
    g.add_argument("--restart_iter", type=int, default=0, help="original restart index (see --resume)")
    for what in ("bc", "policy", "dynamics"):
        _bool(g, f"restore_{what}_variables", f"restore the {what} from --restore_path (a bremen run directory)")
    _bool(g, "restore_offline_data", "accepted for compatibility (bremen reads the dataset file)")
    _bool(g, "restore_value", "restore the value baseline from --restore_path")
    _bool(g, "bc_init", "initialize TRPO from the BC policy (BREMEN); --no_bc_init gives ME-TRPO-style runs")
    _bool(g, "use_s_t", "imaginary start states: random dataset observations")
    _bool(g, "use_s_0", "imaginary start states: first observations of dataset episodes")
    _bool(g, "pretrain_value", "pre-fit the baseline on the dataset's rewards")
    g.add_argument("--video_dir", default=None, help="record evaluation videos here")
    g.add_argument("--restore_path", default=None, help="run directory (or checkpoint) to restore from")
    g.add_argument("--gaussian", type=float, default=None, help="std of the action-sampling noise")
    _bool(g, "const_sampling", "sampling noise with a fixed std (--gaussian) instead of --gaussian x sigma(s)")
    _bool(g, "all_bc", "recursive: BC on all data so far instead of the latest batch")
    _bool(g, "eval_model", "log model-accuracy diagnostics at every evaluation")

    b = p.add_argument_group("bremen flags")
    if script in ("offline", "recursive"):
        b.add_argument("--algorithm", default=None, metavar="NAME",
                       help="bremen (default): TRPO from the behavior-cloned policy; me_trpo: the same pipeline "
                            "from a fresh policy sampling its own actions, no behavior regularization; the "
                            "model-free baselines bc, bcq, bear, brac_primal, brac_dual, sac (their settings: "
                            "--set algo.KEY=VALUE and the options below)")

    if script == "recursive":
        b.add_argument("--deployments", type=int, default=None,
                       help="number of real-data batches, the first one from uniform random actions "
                            "(sets --onpol_iters = deployments x --interval)")
        b.add_argument("--batch_size", type=int, default=None,
                       help="real steps per deployment, a multiple of 1000 (sets --n_train = deployments x batch)")
        _bool(b, "reinit_agent", "model-free baselines: train each deployment from a fresh agent instead of "
                                 "continuing from the previous deployment's (the default)")
    if script in ("offline", "recursive"):
        b.add_argument("--policy_validation", type=float, default=None, metavar="RATIO",
                       help="bremen, me_trpo: ME-TRPO's policy validation: after every outer iteration, the share of "
                            "ensemble members under which the policy's imagined return rose; below RATIO (ME-TRPO: "
                            "0.7) --validation_patience times in a row, the deployment's TRPO stops and goes back "
                            "to the last policy that passed (default 0: off)")
        b.add_argument("--validation_patience", type=int, default=None, metavar="N",
                       help="checks below --policy_validation in a row that stop TRPO (default 3)")
        b.add_argument("--disagreement_penalty", type=float, default=None, metavar="LAMBDA",
                       help="bremen, me_trpo: every imaginary step's reward loses LAMBDA times the ensemble members' "
                            "largest pairwise distance (normalized state deltas), MOPO's penalty on BREMEN's "
                            "ensemble (default 0: off)")
    if script == "offline":
        b.add_argument("--vmap_seeds", action="store_true",
                       help="model-free baselines: train all --random_seeds as one compiled program (one run "
                            "directory per seed, as without it)")
    b.add_argument("--preset", choices=PRESETS, default=None,
                   help="paper: the published runs' sizes (GPU work); cpu: sized for a 2-core CPU; "
                        "smoke: seconds, for tests")
    b.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="override one param-file value after the preset, e.g. --set dynamics.epochs=200 "
                        "(VALUE is JSON: 200, 1e-3, true, [64,64]); repeatable")
    b.add_argument("--data_path", default=None, help="recursive: start from this dataset instead of a uniform-random "
                   "first batch" if script == "recursive" else "dataset file: bremen's format or a D4RL-layout HDF5 "
                   "file (default data/<env>/<noise>.h5)")
    b.add_argument("--log_dir", default=None, help="run directory (default from log_save_dir/env/exp_name/seed)")
    b.add_argument("--seed", type=int, default=None, help="one seed (same as --random_seeds S)")
    b.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    b.add_argument("--force", action="store_true", help="start over in an existing run directory")

    f = p.add_argument_group("fidelity switches (docs/FIDELITY.md says which default reproduces the original)")
    f.add_argument("--member_mode", choices=("batch", "rollout"), default=None,
                   help="batch: one random ensemble member per imaginary step for all rollouts (original); "
                        "rollout: an independent member per rollout and step")
    _bool(f, "padded_batch", "TRPO step on the original's zero-padded, truncated [paths x L] batch")
    _bool(f, "consistent_likelihood", "TRPO ratios/KL with the sampling distribution instead of the network's sigma")
    _bool(f, "bootstrap_truncation", "bootstrap V(s') when an imaginary rollout hits the horizon")
    f.add_argument("--line_search_kl", type=float, default=None,
                   help="also require mean KL <= this x target_kl in the line search (original: no check)")
    _bool(f, "restore_best_model", "keep each ensemble member's best-validation weights (original: the last)")
    f.add_argument("--subsample", choices=("prefix", "uniform", "episodes"), default=None,
                   help="how --n_train transitions are taken from the dataset (original: prefix)")
    f.add_argument("--fisher_subsample", type=int, default=None,
                   help="Fisher-vector products on a random 1/k of the TRPO batch's valid rows, drawn afresh every "
                        "iteration (original: 1, all rows)")
    f.add_argument("--start_pool_size", type=int, default=None,
                   help="real-env resets sampled once as the pool of imaginary start states")
    if script in ("offline", "recursive"):
        _add_baseline_options(p)


def _add_baseline_options(p: argparse.ArgumentParser) -> None:
    """The baselines' own option names (BEAR's --lagrange_thresh, BRAC's --alpha, ...), where no flag of
    bremen's has the name already; bremen.experiment checks each against the chosen algorithm."""
    from bremen.algos.registry import all_option_names

    o = p.add_argument_group("baseline options (the original repositories' names; each belongs to the algorithms named)")
    taken = set(p._option_string_actions)
    for opt, owners in sorted(all_option_names().items()):
        if f"--{opt}" not in taken:
            o.add_argument(f"--{opt}", default=None, metavar="V", help=", ".join(owners))


DESCRIPTIONS = {
    "offline": "BREMEN offline: dynamics ensemble + BC-initialized TRPO on imaginary rollouts, trained on a fixed "
               "dataset. No arguments: the CPU demo.",
    "recursive": "Deployment-efficient BREMEN: learn from scratch in a few deployments, each collecting a batch of "
                 "real steps with the current policy (the first with random actions) and retraining the ensemble, "
                 "BC and TRPO on the data so far.",
}


def script_parser(script: str, prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``offline.py`` or ``recursive.py`` (also what sweeps parse their cells' commands with)."""
    p = argparse.ArgumentParser(prog=prog or f"{script}.py", description=DESCRIPTIONS[script])
    add_original_flags(p, script)
    return p

