"""From a resolved experiment (bremen.experiment) to what runs it: the learner and the run driver's config.

``build_run(exp)`` is what ``offline.py`` and ``recursive.py`` (and sweeps, through them) call for each seed;
below this module nothing reads the command line, the param file or ``exp.flags``.
"""

from __future__ import annotations

from typing import Callable

import jax

from bremen.algos import registry
from bremen.experiment import ALGORITHM_LABELS, Experiment
from bremen.learners.actor_critic import ActorCriticConfig, ActorCriticLearner, spec_of
from bremen.learners.model_based import ModelBasedConfig, ModelBasedLearner
from bremen.learners.mopo_optimizer import MOPOOptimizer
from bremen.run.config import RunConfig
from bremen.run.driver import Run

RESTORE_FLAGS = {"dynamics": "restore_dynamics_variables", "bc": "restore_bc_variables",
                 "policy": "restore_policy_variables", "value": "restore_value"}


def learner_config(exp: Experiment) -> ModelBasedConfig:
    """The model-based learner's typed config (BREMEN, ME-TRPO, MOPO's model, MOReL)."""
    f = exp.flags
    morel = exp.agent if f["algorithm"] == "morel" else None
    return ModelBasedConfig(
        algorithm=f["algorithm"], dynamics=exp.dynamics, bc=exp.bc, trpo=exp.trpo,
        policy_shape=tuple(exp.params.policy.network_shape), outer_iterations=f["onpol_iters"],
        interval=f["interval"] if exp.script == "recursive" else None,
        bc_init=bool(f["bc_init"]), dataset_normalizer=bool(f["dataset_normalizer"]),
        reinitialize_every_outer_iteration=bool(exp.params.policy.reinitialize_every_itr),
        start_source="s_t" if f["use_s_t"] else "s_0" if f["use_s_0"] else "reset",
        start_pool_size=exp.start_pool_size, member_mode=f["member_mode"], pretrain_value=bool(f["pretrain_value"]),
        restore={part: f["restore_path"] for part, flag in RESTORE_FLAGS.items() if f[flag]},
        pessimism=morel.pessimism if morel else None, halt_penalty=morel.halt_penalty if morel else 0.0,
        validation_ratio=f["policy_validation"], validation_patience=f["validation_patience"],
        disagreement_penalty=f["disagreement_penalty"],
    )


def make_learner(exp: Experiment, task, say: Callable[[str], None] = lambda m: None):
    """The learner of ``exp``'s algorithm: model-based (BREMEN, ME-TRPO) or a model-free agent. Checks what it
    reads (BRAC's π_b file) with a one-line error."""
    name = exp.flags["algorithm"]
    if name == "mopo":
        optimizer = MOPOOptimizer(task, exp.agent, exp.seed, jax.random.PRNGKey(exp.seed))
        return ModelBasedLearner(task, learner_config(exp), exp.seed, say=say, optimizer=optimizer)
    if name in registry.MODEL_BASED:
        return ModelBasedLearner(task, learner_config(exp), exp.seed, say=say)
    cfg = exp.agent
    return ActorCriticLearner(task, ActorCriticConfig(
        algorithm=name, agent=registry.make_agent(name, spec_of(task), cfg), steps=getattr(cfg, "total_steps", cfg.steps),
        eval_every=cfg.eval_every, batch_size=cfg.batch_size, warm_start=not exp.flags.get("reinit_agent")),
        exp.seed, say=say)


def label_of(algorithm: str) -> str:
    return ALGORITHM_LABELS.get(algorithm) or registry.LABELS[algorithm]


def run_config(exp: Experiment) -> RunConfig:
    f = exp.flags
    return RunConfig(
        script=exp.script, task=exp.task, seed=exp.seed, preset=exp.preset, algorithm=f["algorithm"],
        label=label_of(f["algorithm"]), run_dir=exp.run_dir, settings=exp.to_dict(),
        resume_free_keys=("flags.onpol_iters",) if exp.script == "offline" else (),
        eval_steps=exp.eval_steps, eval_model=bool(f["eval_model"]), save_variables=bool(f["save_variables"]),
        video_dir=f["video_dir"] or None, outer_iterations=f["onpol_iters"],
        data_path=exp.data_path, noise=f["noise"], n_train=f["n_train"], subsample=f["subsample"],
        deployments=f.get("deployments", 1), batch_size=f.get("batch_size", 0), all_bc=bool(f.get("all_bc")),
        initial_data=f.get("initial_data") or None,
    )


def build_run(exp: Experiment, resume: bool = False, force: bool = False, progress: bool = True) -> Run:
    """The run of one seed: its learner and driver (every input checked, nothing written yet but the run
    directory's own checks)."""
    from bremen.tasks import make

    task = make(exp.task)
    learner = make_learner(exp, task, Run.say_for(progress))
    return Run(run_config(exp), learner, resume=resume, force=force, progress=progress, task=task)
