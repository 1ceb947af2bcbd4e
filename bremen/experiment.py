"""From the original command line to typed configs: param file < preset < explicit flags.

``resolve(args, script)`` reads the param file, applies the chosen preset (``paper`` by default) and the
flags given on the command line, checks the combination, and returns an :class:`Experiment` holding the
algorithms' Config dataclasses. Nothing here runs anything.

Precedence: param file < preset < ``--algorithm`` < ``--set section.key=value`` < flags.

Presets:

* ``paper``: the published runs (the original README's commands): per-task trust region δ and imaginary
  horizon H, ``--gaussian 0.1 --const_sampling --bc_init``, and the param file's network sizes and step
  counts (5 × 2×1024 ensemble, 300k BC steps, 50k-step TRPO batches: GPU-sized work).
* ``cpu``: the same algorithm sized to finish on a 2-core CPU in minutes (hidden-200 ensemble trained for at
  most 60 epochs, 30k BC steps, 20k-step TRPO batches with H = 250 and Fisher-vector products on every 5th
  row, 100k transitions, 20 outer iterations).
  On hopper, ``cpu`` also starts imaginary rollouts from dataset states (``--use_s_t``; see PRESET_TASK_FLAGS).
* ``smoke``: seconds; only for tests. On ``recursive.py`` it runs 3 deployments, or the number the command
  asks for (``--onpol_iters`` / ``--interval`` / ``--deployments``, the ones not given taken from ``paper``),
  and makes each one a single real path and one outer iteration, whatever sizes the command gives.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bremen.algos import me_trpo, mopo, morel
from bremen.algos import registry
from bremen.algos.bc import BCConfig
from bremen.algos.trpo import TRPOConfig
from bremen.config import ParamFile, apply_overrides, default_param_path, load_params, params_to_dict
from bremen.errors import UserError
from bremen.flags import NOISES
from bremen.models.dynamics import DynamicsConfig
from bremen.models.model_env import static_bound
from bremen.run.online import SMOKE, OnlineRunConfig
from bremen.tasks import make as make_task
from bremen.values import parse_setting

# The original README's per-task settings.
PAPER_TASK_FLAGS = {
    "ant": {"target_kl": 0.05, "max_path_length": 250},
    "half_cheetah": {"target_kl": 0.1, "max_path_length": 250},
    "cheetah_run": {"target_kl": 0.1, "max_path_length": 250},
    "hopper": {"target_kl": 0.05, "max_path_length": 1000},
    "walker2d": {"target_kl": 0.05, "max_path_length": 1000},
}
# The published runs' flags beyond the typed configs' defaults (which already are the published runs' values:
# --gaussian 0.1 --const_sampling, alpha 0, 50k-step TRPO batches, 5 models; see TYPED_FLAG_DEFAULTS).
PAPER_FLAGS = {"bc_init": True}
PAPER_SCRIPT_FLAGS = {"offline": {"onpol_iters": 250}, "recursive": {"onpol_iters": 400, "interval": 80,
                                                                     "n_train": 1_000_000}}

# Preset overrides: flag names, or "section.key" for param-file values.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "cpu": {
        "dynamics.hidden_size": 200, "dynamics.epochs": 60, "behavior_policy.total_train_steps": 30_000,
        "trpo_batch_size": 20_000, "n_train": 100_000, "onpol_iters": 20, "max_path_length": 250,
        "start_pool_size": 5_000, "fisher_subsample": 5,
    },
    "smoke": {
        "dynamics.hidden_size": 32, "dynamics.epochs": 6, "behavior_policy.total_train_steps": 300,
        "behavior_policy.network_shape": [32, 32], "policy.network_shape": [32, 32],
        "trpo_batch_size": 1_000, "max_path_length": 100, "n_train": 5_000, "onpol_iters": 2,
        "trpo.iterations": 2, "num_path_onpol": 1, "ensemble_model_count": 2, "start_pool_size": 64,
        "bc_steps_per_call": 100,
    },
}
# Recursive runs: the original README's per-task commands (ORIGINAL.md §2.2; 200k real steps per deployment)
# and the presets' deployment plans. cpu: 5 deployments of 20k real steps with 20 outer iterations (500 TRPO
# steps) each. BREMEN re-initializes the policy from BC at every deployment, and BC leaves the policy's own
# sigma near its floor, so TRPO's KL-bounded steps move it slowly: the paper spends 2000 TRPO steps per
# deployment, and 250 (the first plan) left BREMEN's returns rising when each deployment ended. 500 is what
# fits 45 minutes per run on 2 cores. smoke: 3 deployments of one 1000-step path, one outer iteration each.
PAPER_RECURSIVE_TASK_FLAGS = {"hopper": {"n_train": 2_000_000, "onpol_iters": 2400, "interval": 240},
                              "walker2d": {"n_train": 2_000_000, "onpol_iters": 800, "interval": 80}}
PRESET_SCRIPT_FLAGS: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {"recursive": {"n_train": 100_000, "onpol_iters": 100, "interval": 20}},
    "smoke": {"recursive": {"n_train": 3_000, "onpol_iters": 3, "interval": 1, "dynamics.batch_size": 256}},
}
# Algorithms on the offline pipeline (ensemble -> BC -> TRPO on imaginary rollouts): the flag values each sets,
# applied after the preset and before --set and explicit flags.
ALGORITHMS: dict[str, dict[str, Any]] = {"bremen": {}, me_trpo.NAME: me_trpo.FLAGS, morel.NAME: morel.FLAGS}
ALGORITHM_LABELS = {"bremen": "BREMEN", me_trpo.NAME: me_trpo.LABEL}
# Per-task preset overrides, applied after PRESETS. hopper under ``cpu``: the preset cuts the imaginary horizon
# from the paper's 1000 to 250 steps, so rollouts from resets never reach the states after step 250 of an
# episode, where the policies trained that way fall; dataset start states (``--use_s_t``) cover whole
# episodes (README, Results: 1.38x BC over 3 seeds, against 0.70x from resets). ``--no_use_s_t`` undoes it.
PRESET_TASK_FLAGS: dict[str, dict[str, dict[str, Any]]] = {"cpu": {"hopper": {"use_s_t": True}}}
# Flags with the original scripts' defaults, used when neither a preset nor the command line sets them.
ORIGINAL_DEFAULTS = {"onpol_iters": 500, "interval": 80, "random_seeds": [1234, 4321, 2341, 3341, 789],
                     "n_train": 1_000_000}
_TRPO, _DYNAMICS = TRPOConfig(), DynamicsConfig()
# Flags that are a field of a typed config take its default: one default per setting. Those are the published
# runs' values; the original CLI's own defaults (--target_kl 0.01, --gaussian 1.0 without --const_sampling) were
# used by none of its README's commands. A task without PAPER_TASK_FLAGS (a gymnasium id) gets delta 0.05, H 1000.
TYPED_FLAG_DEFAULTS = {"target_kl": _TRPO.target_kl, "gaussian": _TRPO.sampling_std,
                       "const_sampling": _TRPO.const_sampling, "alpha": _TRPO.kl_penalty, "max_path_length": _TRPO.horizon,
                       "trpo_batch_size": _TRPO.batch_size, "ensemble_model_count": _DYNAMICS.ensemble_size,
                       "fisher_subsample": _TRPO.fisher_subsample, "line_search_kl": _TRPO.line_search_kl}
BOOL_FLAGS = ("padded_batch", "consistent_likelihood", "bootstrap_truncation", "restore_best_model", "param_value", "save_variables", "restore_bc_variables", "restore_policy_variables",
              "restore_dynamics_variables", "restore_offline_data", "restore_value", "bc_init", "use_s_t",
              "use_s_0", "pretrain_value", "const_sampling", "all_bc", "eval_model")
EXTRA_DEFAULTS = {"start_pool_size": 10_000, "bc_steps_per_call": 10_000, "member_mode": "batch",
                  "subsample": "prefix", "dataset_normalizer": False, "reinit_agent": False,
                  "policy_validation": 0.0, "validation_patience": 3, "disagreement_penalty": 0.0}


@dataclass
class Experiment:
    """A fully resolved experiment (one per seed)."""

    script: str
    task: str
    seed: int
    preset: str
    params: ParamFile
    dynamics: DynamicsConfig
    bc: BCConfig
    trpo: TRPOConfig
    flags: dict
    """Every original flag's resolved value (for params.json and bremen.experiment.run_config)."""
    data_path: Path
    run_dir: Path
    start_pool_size: int
    seeds: list = field(default_factory=list)
    agent: Any = None
    """The typed config of a model-free algorithm (bremen.algos.registry); None for BREMEN / ME-TRPO."""

    @property
    def eval_steps(self) -> int:
        """Real-env steps per evaluation: num_path_onpol x env_horizon (at least that many, whole episodes)."""
        return self.params.num_path_onpol * self.params.env_horizon

    def to_dict(self) -> dict:
        return {
            "script": self.script, "task": self.task, "seed": self.seed, "preset": self.preset,
            "data_path": str(self.data_path), "run_dir": str(self.run_dir), "start_pool_size": self.start_pool_size,
            "flags": self.flags, "params": params_to_dict(self.params),
            "dynamics": dataclasses.asdict(self.dynamics), "bc": dataclasses.asdict(self.bc),
            "trpo": dataclasses.asdict(self.trpo),
            **({"agent": dataclasses.asdict(self.agent)} if self.agent is not None else {}),
        }


def _set_param(params: ParamFile, dotted: str, value) -> None:
    obj = params
    *path, last = dotted.split(".")
    for p in path:
        obj = getattr(obj, p)
    setattr(obj, last, value)


def resolve(args: argparse.Namespace, script: str = "offline") -> list[Experiment]:
    """One :class:`Experiment` per seed from parsed flags (see :mod:`bremen.flags`)."""
    if not args.env:
        raise UserError("--env is required (a task: ant, half_cheetah, hopper, walker2d, cheetah_run)")
    if args.algo != "trpo":
        raise UserError(f"--algo {args.algo!r} is not available; BREMEN's policy optimizer is trpo")
    if args.noise not in NOISES and not args.data_path:
        raise UserError(f"--noise {args.noise!r} is not one of {', '.join(NOISES)} (or pass --data_path)")
    preset = args.preset or "paper"
    param_path = Path(args.param_path) if args.param_path else default_param_path(args.env)
    if not args.param_path and not param_path.is_file():
        param_path = default_param_path("half_cheetah")  # a gymnasium id: the generic file
    params = load_params(param_path)
    if params.env_name and params.env_name != args.env and args.env in PAPER_TASK_FLAGS:
        raise UserError(f"{param_path}: env_name is {params.env_name!r} but --env is {args.env!r}; "
                        f"use configs/params_{args.env}_offline.json")

    flags: dict[str, Any] = dict(ORIGINAL_DEFAULTS, **EXTRA_DEFAULTS)
    flags.update({k: False for k in BOOL_FLAGS})
    flags.update(TYPED_FLAG_DEFAULTS)
    flags.update(PAPER_FLAGS)
    flags.update(PAPER_TASK_FLAGS.get(args.env, {}))
    flags.update(PAPER_SCRIPT_FLAGS.get(script, {}))
    for key, value in PRESETS[preset].items():
        if "." in key or key in ("num_path_onpol",):
            _set_param(params, key, value)
        else:
            flags[key] = value
    flags.update(PRESET_TASK_FLAGS.get(preset, {}).get(args.env, {}))
    if script == "recursive":
        # smoke keeps the deployment count a command asks for: the plan flags it does not give come from paper.
        paper_plan = preset == "paper" or (preset == "smoke" and any(
            getattr(args, k, None) is not None for k in ("onpol_iters", "interval", "deployments")))
        if paper_plan:
            flags.update(PAPER_SCRIPT_FLAGS[script], **PAPER_RECURSIVE_TASK_FLAGS.get(args.env, {}))
        for key, value in PRESET_SCRIPT_FLAGS.get(preset, {}).get(script, {}).items():
            if paper_plan and key in PAPER_SCRIPT_FLAGS[script]:
                continue
            if "." in key:
                _set_param(params, key, value)
            else:
                flags[key] = value
    algorithm = getattr(args, "algorithm", None) or "bremen"
    if algorithm not in registry.ALGORITHMS:
        raise UserError(f"--algorithm {algorithm!r} is not one of {', '.join(registry.ALGORITHMS)}")
    for key, value in ALGORITHMS.get(algorithm, {}).items():
        if "." in key:
            _set_param(params, key, value)
        else:
            flags[key] = value
    flags["algorithm"] = algorithm
    overrides = getattr(args, "overrides", None) or []
    algo_sets = _algo_settings(overrides, algorithm)
    params = apply_overrides(params, [o for o in overrides if not o.startswith("algo.")])
    for key, value in vars(args).items():
        if key in flags and value is not None and key != "random_seeds":
            flags[key] = value
    if getattr(args, "use_s_0", None) and getattr(args, "use_s_t", None) is None:
        flags["use_s_t"] = False  # an explicit --use_s_0 replaces a preset's --use_s_t
    seeds = [args.seed] if args.seed is not None else (args.random_seeds or [0])
    flags["random_seeds"] = seeds
    for k in ("exp_name", "sub_exp_name", "noise", "algo", "restart_iter", "video_dir", "restore_path", "interval"):
        if getattr(args, k, None) is not None or k not in flags:
            flags[k] = getattr(args, k, None)
    flags["exp_name"] = flags.get("exp_name") or algorithm
    if script == "recursive":
        # --data_path: deployment 0 is that dataset (a warm start) instead of uniform random actions
        flags["initial_data"] = str(args.data_path) if args.data_path else None
        _deployment_plan(flags, args, params.env_horizon)
        if preset == "smoke":
            _shrink_deployments(flags, params.env_horizon)
    _check(flags, params, args.env)
    task = make_task(args.env)  # a built-in task or a gymnasium id (then the ensemble learns the reward)

    dyn = DynamicsConfig(
        ensemble_size=flags["ensemble_model_count"], n_layers=params.dynamics.n_layers,
        hidden=params.dynamics.hidden_size, activation=params.dynamics.activation,
        batch_size=params.dynamics.batch_size, lr=params.dynamics.learning_rate, epochs=params.dynamics.epochs,
        restore_best=flags["restore_best_model"], learn_reward=not task.known_reward,
    )
    bp = params.behavior_policy
    bc = BCConfig(steps=bp.total_train_steps, batch_size=bp.batch_size, lr=bp.learning_rate,
                  hidden=tuple(bp.network_shape), activation=bp.activation,
                  steps_per_call=min(flags["bc_steps_per_call"], bp.total_train_steps),
                  act_low=static_bound(task.act_low), act_high=static_bound(task.act_high))
    trpo = TRPOConfig(
        gamma=params.trpo.gamma, gae_lambda=params.trpo.gae, target_kl=flags["target_kl"],
        iterations=params.trpo.iterations, batch_size=flags["trpo_batch_size"], horizon=flags["max_path_length"],
        kl_penalty=flags["alpha"], sampling_std=flags["gaussian"], const_sampling=flags["const_sampling"],
        baseline="mlp" if flags["param_value"] else "linear", policy_activation=params.policy.activation,
        padded_batch=flags["padded_batch"], consistent_likelihood=flags["consistent_likelihood"],
        bootstrap_truncation=flags["bootstrap_truncation"], line_search_kl=flags["line_search_kl"],
        fisher_subsample=flags["fisher_subsample"],
    )
    agent = None
    if algorithm in registry.MODEL_FREE or algorithm in registry.METHODS:
        agent = registry.agent_config(algorithm, preset, _baseline_options(args, algorithm), algo_sets, args.env,
                                       recursive=script == "recursive")
    else:
        _baseline_options(args, algorithm)
    if algorithm == mopo.NAME:  # MOPO's ensemble; its epochs are the run's outer iterations
        given = [f"--{k}" for k in ("onpol_iters", "interval") if getattr(args, k, None) is not None]
        if given:
            raise UserError(f"{' and '.join(given)}: MOPO's training length is its epochs per deployment; "
                            f"use --set algo.epochs=N")
        dyn = dataclasses.replace(dyn, **mopo.dynamics_settings(preset))
        flags["interval"] = agent.epochs
        flags["onpol_iters"] = agent.epochs * flags.get("deployments", 1)
    data_path = Path(args.data_path) if args.data_path else Path("data") / args.env / f"{flags['noise']}.h5"
    exps = []
    for seed in seeds:
        run_dir = Path(args.log_dir) if args.log_dir and len(seeds) == 1 else _run_dir(args, flags, params, seed)
        exps.append(Experiment(script, args.env, int(seed), preset, params, dyn, bc, trpo, dict(flags), data_path,
                               run_dir, flags["start_pool_size"], seeds, agent))
    return exps


def _run_dir(args, flags, params: ParamFile, seed: int) -> Path:
    root = Path(args.log_dir) if args.log_dir else Path(params.log_save_dir)
    return run_dir_layout(root, args.env, flags["noise"], flags["exp_name"], seed, flags["sub_exp_name"])


def run_dir_layout(root, env: str, noise: str, exp_name: str, seed: int, sub_exp_name: str = "") -> Path:
    """The original's layout: <root>/<env>[/<noise>]/<sub_exp_name>/<exp_name>/<exp_name>_seed<seed>[<noise>]."""
    parts = [env] + ([noise] if noise != "pure" else []) + [sub_exp_name, exp_name]
    leaf = f"{exp_name}_seed{seed}" + (noise if noise != "pure" else "")
    return Path(root).joinpath(*[p for p in parts if p], leaf)


def _deployment_plan(flags: dict, args, horizon: int) -> None:
    """Apply ``--deployments`` / ``--batch_size`` and check the original's batch formula (ORIGINAL.md §2.2):
    deployments = onpol_iters / interval, batch = int(n_train · interval / onpol_iters / horizon) paths."""
    interval = flags["interval"]
    if interval is None or interval <= 0:
        raise UserError(f"--interval must be a positive number of outer iterations per deployment, got {interval}")
    n_dep, batch = getattr(args, "deployments", None), getattr(args, "batch_size", None)
    if n_dep is not None:
        if n_dep <= 0:
            raise UserError(f"--deployments must be positive, got {n_dep}")
        if args.onpol_iters is not None and args.onpol_iters != n_dep * interval:
            raise UserError(f"--deployments {n_dep} with --interval {interval} means --onpol_iters {n_dep * interval}, "
                            f"not {args.onpol_iters}; give one of --deployments and --onpol_iters")
        flags["onpol_iters"] = n_dep * interval
    if flags["onpol_iters"] <= 0 or flags["onpol_iters"] % interval:
        raise UserError(f"--onpol_iters {flags['onpol_iters']} is not a positive multiple of --interval {interval}")
    deployments = flags["onpol_iters"] // interval
    if batch is not None:
        if batch < horizon or batch % horizon:
            raise UserError(f"--batch_size {batch}: a deployment collects whole {horizon}-step paths; give a "
                            f"positive multiple of {horizon}")
        if args.n_train is not None and args.n_train != batch * deployments:
            raise UserError(f"--batch_size {batch} with {deployments} deployments means --n_train "
                            f"{batch * deployments}, not {args.n_train}; give one of --batch_size and --n_train")
        flags["n_train"] = batch * deployments
    paths = int(flags["n_train"] * interval / flags["onpol_iters"] / horizon)
    if paths < 1:
        raise UserError(f"--n_train {flags['n_train']} over {deployments} deployments is less than one {horizon}-step "
                        f"path per deployment; raise --n_train or give --batch_size")
    flags["deployments"], flags["batch_size"] = deployments, paths * horizon


def _algo_settings(overrides: list, algorithm: str) -> dict:
    """``--set algo.key=value`` entries as {key: value}; only the model-free algorithms have them."""
    out = {}
    for o in overrides:
        if not o.startswith("algo."):
            continue
        if algorithm not in registry.MODEL_FREE and algorithm not in registry.METHODS:
            owners = registry.MODEL_FREE + tuple(registry.METHODS)
            raise UserError(f"--set {o}: algo.* settings belong to {', '.join(owners)}; {algorithm} is set "
                            f"through the flags and the param file")
        key, value = parse_setting(o, example="algo.batch_size=256")
        out[key[len("algo."):]] = value
    return out


def _baseline_options(args, algorithm: str) -> dict:
    """The seed repositories' option names given on the command line, checked against ``algorithm``."""
    given = {}
    for opt, owners in registry.all_option_names().items():
        value = getattr(args, opt, None)
        if value is None or (opt == "alpha" and algorithm in registry.MODEL_BASED):
            continue  # --alpha is also BREMEN's own flag (the KL penalty)
        if algorithm not in owners:
            raise UserError(f"--{opt} is an option of {', '.join(owners)}, not of {algorithm}; drop it or "
                            f"choose --algorithm {owners[0]}")
        given[opt] = value
    return given


def _shrink_deployments(flags: dict, horizon: int) -> None:
    """``--preset smoke`` keeps the number of deployments a command asks for and shrinks each one to a single
    real path and one outer iteration, so any recursive command (the original README's included) can be
    checked end to end in seconds."""
    flags["interval"], flags["onpol_iters"] = 1, flags["deployments"]
    flags["batch_size"], flags["n_train"] = horizon, horizon * flags["deployments"]


def _check(flags: dict, params: ParamFile, task: str) -> None:
    positive = ("onpol_iters", "max_path_length", "trpo_batch_size", "n_train", "ensemble_model_count", "fisher_subsample",
                "start_pool_size")
    for k in positive:
        if int(flags[k]) <= 0:
            raise UserError(f"--{k} must be positive, got {flags[k]}")
    for k in ("target_kl", "gaussian"):
        if flags[k] <= 0:
            raise UserError(f"--{k} must be positive, got {flags[k]}")
    for k in ("alpha", "disagreement_penalty"):
        if flags[k] < 0:
            raise UserError(f"--{k} must be >= 0 (0: off), got {flags[k]}")
    if not 0 <= flags["policy_validation"] <= 1:
        raise UserError(f"--policy_validation is a share of the ensemble's members in [0, 1] (ME-TRPO: 0.7; 0: off), "
                        f"got {flags['policy_validation']}")
    if int(flags["validation_patience"]) < 1:
        raise UserError(f"--validation_patience must be at least 1 check, got {flags['validation_patience']}")
    for k, does in (("policy_validation", "watches TRPO"), ("disagreement_penalty", "penalizes TRPO's imaginary rewards")):
        if flags[k] and flags["algorithm"] not in ("bremen", me_trpo.NAME):
            own = "MOPO's own is --penalty_coeff" if k == "disagreement_penalty" and flags["algorithm"] == mopo.NAME else "drop it"
            raise UserError(f"--{k} {does} on BREMEN's ensemble (bremen, me_trpo), not {flags['algorithm']}; {own}")
    if flags["algorithm"] == me_trpo.NAME and flags["bc_init"]:
        raise UserError("--algorithm me_trpo starts from a fresh policy; drop --bc_init (or use --algorithm bremen)")
    if flags["use_s_t"] and flags["use_s_0"]:
        raise UserError("--use_s_t and --use_s_0 are exclusive: choose one source of imaginary start states")
    if flags["bc_init"] and list(params.policy.network_shape) != list(params.behavior_policy.network_shape):
        raise UserError(f"--bc_init needs policy.network_shape {params.policy.network_shape} to equal "
                        f"behavior_policy.network_shape {params.behavior_policy.network_shape} in the param file")
    for flag in ("restore_dynamics_variables", "restore_bc_variables", "restore_policy_variables", "restore_value"):
        if flags[flag] and not flags.get("restore_path"):
            raise UserError(f"--{flag} needs --restore_path (a bremen run directory)")
        if flags[flag] and not Path(flags["restore_path"]).exists():
            raise UserError(f"--restore_path {flags['restore_path']} does not exist; give a bremen run directory")
    if params.dynamics.model != "nn":
        raise UserError(f"dynamics.model {params.dynamics.model!r} is not available; use \"nn\"")


def online_config(args: argparse.Namespace) -> OnlineRunConfig:
    """The :class:`bremen.run.online.OnlineRunConfig` of a new ``bremen train-behavior`` run from its flags."""
    if args.eval_target is None:
        raise UserError("--eval-target is required for a new run (e.g. --eval-target 1000)")
    return OnlineRunConfig(
        task=args.task, eval_target=args.eval_target, env_steps=1_000_000 if args.steps is None else args.steps,
        seed=args.seed, eval_every=args.eval_every, eval_episodes=args.eval_episodes,
        update_every=args.update_every, stop_at_target=args.stop_at_target,
        **(SMOKE if args.preset == "smoke" else {}))
