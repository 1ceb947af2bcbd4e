"""BRAC's settings (bremen.algos.brac): the typed config, its presets, the original's option names, the checks,
and the reader of a π_b file (``behavior_ckpt_file``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bremen.algos.agent import Spec
from bremen.algos.divergences import KERNELS
from bremen.errors import UserError
from bremen.io.policy_io import load_policy

NAMES = ("brac_primal", "brac_dual")
DIVERGENCES = {"primal": ("kl", "mmd"), "dual": ("kl", "w")}
EVAL_POLICIES = ("main", "max_q")
ALPHA_MAX = 500.0  # α = clip(α_var, 0, ALPHA_MAX)
MAX_Q_SAMPLES = 10  # proposals of the max_q test policy
LOG_STD_MIN, LOG_STD_MAX, CLIP_EPS = -5.0, 0.0, 1e-3  # log σ range of π and π_b; action clip before log π_b


@dataclass(frozen=True)
class BRACConfig:
    """Hyperparameters of BRAC (defaults: brac_primal as in BRAC's README example, run_primal.sh)."""

    form: str = "primal"
    """"primal" (D̂ by P-kl/P-mmd against a cloned π_b) or "dual" (D̂ by D-kl/D-w with a critic c)."""
    divergence: str = "kl"
    """D̂: primal "kl" (P-kl) or "mmd" (P-mmd); dual "kl" (D-kl) or "w" (D-w)."""
    value_penalty: bool = True
    """Subtract α·D̂(s') in the target (Q): BRAC-v; False is BRAC-p (policy regularisation (π) only)."""
    alpha: float = 0.1
    """Initial (fixed unless train_alpha) divergence weight α of (Q), (π); clipped to [0, ALPHA_MAX]."""
    train_alpha: bool = False
    """Train α by (A)."""
    target_divergence: float = 0.0
    """Target divergence of (A)."""
    alpha_lr: float = 1e-3
    """Adam learning rate of α (A) and α_ent (E)."""
    alpha_entropy: float = 0.0
    """Initial entropy weight α_ent of (Q), (π) (0: no entropy term)."""
    train_alpha_entropy: bool = False
    """Train α_ent by (E)."""
    target_entropy: Optional[float] = None
    """H̄ of (E); None means −|A|."""
    n_q: int = 2
    """Q networks K in the ensemble Q_λ of (Q), (π)."""
    ensemble_q_lambda: float = 1.0
    """λ of Q_λ = λ·min + (1 − λ)·max."""
    q_hidden: tuple = (300, 300)
    """Hidden sizes of each Q_k."""
    actor_hidden: tuple = (200, 200)
    """Hidden sizes of π."""
    critic_hidden: tuple = (300, 300)
    """Hidden sizes of the dual critic c of (C)."""
    q_lr: float = 1e-3
    """Adam learning rate of the Q networks (Q)."""
    actor_lr: float = 3e-4
    """Adam learning rate of π (π): 3e-4 in the primal README example; BRAC's run_dual.sh uses 3e-6."""
    critic_lr: float = 1e-3
    """Adam learning rate of the dual critic (C)."""
    c_iter: int = 3
    """Critic steps (C) per update (dual); the extra ones reuse the update's minibatch."""
    gp_coef: float = 5.0
    """Gradient-penalty coefficient of (C)."""
    n_div_samples: int = 4
    """Samples n per state of P-kl / P-mmd."""
    mmd_kernel: str = "laplacian"
    """Kernel of P-mmd: "laplacian" exp(−‖x−y‖₁/σ) or "gaussian" exp(−‖x−y‖₂²/σ)."""
    mmd_sigma: float = 20.0
    """σ of the P-mmd kernel."""
    warm_start: int = 20_000
    """BRAC updates t for which (π) has no Q term (the actor only minimises α·D̂ and the entropy term)."""
    tau: float = 0.005
    """Polyak rate of Q̄ (before each Q step)."""
    discount: float = 0.99
    """γ of (Q); only a true termination zeroes the bootstrap."""
    batch_size: int = 256
    """Minibatch size."""
    steps: int = 500_000
    """BRAC updates, after the behavior-cloning phase (total_steps = behavior_steps + steps)."""
    eval_every: int = 5000
    """Updates between evaluations."""
    eval_policy: str = "main"
    """Test policy: "main" a = m + h·tanh(μ(s)); "max_q" the best of MAX_Q_SAMPLES actions of π under Q_1."""
    behavior_steps: int = 300_000
    """First updates that only clone π_b (BC eqs. 1-2 of bremen.algos.bc_baseline); ignored by "dual"."""
    behavior_hidden: tuple = (200, 200)
    """Hidden sizes of π_b."""
    behavior_lr: float = 5e-4
    """Adam learning rate of π_b and of its α_ent (BC recipe, trainable from 1.0, target −|A|)."""
    behavior_ckpt_file: Optional[str] = None
    """π_b from an exported tanh-Gaussian policy instead of cloning it (BRAC's ``behavior_ckpt_file``): a
    policy directory or a run directory (its ``policy_final/``), e.g. of a ``bc`` run on the same data; sets
    behavior_steps to 0 and behavior_hidden to the policy's sizes (bremen.learners.actor_critic)."""

    @property
    def behavior_updates(self) -> int:
        """Updates of the behavior-cloning phase (0 for the dual form)."""
        return int(self.behavior_steps) if self.form == "primal" else 0

    @property
    def total_steps(self) -> int:
        return self.behavior_updates + int(self.steps)


def config_for(name: str, **overrides) -> BRACConfig:
    """brac_primal: the README example (α 0.1, BRAC-v, kl, actor lr 3e-4); brac_dual: run_dual.sh (α 10,
    BRAC-p, kl, c_iter 3, actor lr 3e-6, no π_b)."""
    if name == "brac_primal":
        return BRACConfig(**{"form": "primal", **overrides})
    if name == "brac_dual":
        return BRACConfig(**{"form": "dual", "alpha": 10.0, "value_penalty": False, "actor_lr": 3e-6,
                             "behavior_steps": 0, **overrides})
    raise ValueError(f"unknown BRAC agent {name!r}; known: {', '.join(NAMES)}")


# "cpu": one whole run (π_b cloning + BRAC) in <= 15 min on the 2-core CPU. Measured (update_many, 1000 updates
# per call, batch 256, ant's 27/8 dims, cores shared with other jobs, load 5-8): paper nets 22 (primal) / 16 (dual)
# BRAC updates/s; 64-64 nets 90-117 / 101-141 BRAC, 505 cloning updates/s. Cut: every net 64-64 (from 300-300 /
# 200-200), 20k cloning updates (from 300k), 80k BRAC updates (from 500k), warm start 2k (from 20k). 40k BRAC
# updates were too few: half_cheetah pure seed 0 was at -339 after 25k of them and 792 at the end, rising
# (bench/results/brac_primal_budget.json).
PRESETS = {
    "paper": {},
    "cpu": {"q_hidden": (64, 64), "actor_hidden": (64, 64), "critic_hidden": (64, 64),
            "behavior_hidden": (64, 64), "behavior_steps": 20_000, "steps": 80_000, "warm_start": 2_000,
            "actor_lr": 3e-4},  # the dual script's 3e-6 barely moves the actor in 80k updates (tests/test_offline_agents)
    "smoke": {"q_hidden": (32, 32), "actor_hidden": (32, 32), "critic_hidden": (32, 32),
              "behavior_hidden": (32, 32), "steps": 200, "behavior_steps": 100, "warm_start": 50, "eval_every": 100},
}

# BRAC's gin flags of brac_{primal,dual}_agent.Agent → BRACConfig fields.
OPTION_NAMES = {"alpha": "alpha", "value_penalty": "value_penalty", "divergence_name": "divergence",
                "train_alpha": "train_alpha", "n_div_samples": "n_div_samples", "warm_start": "warm_start",
                "c_iter": "c_iter", "ensemble_q_lambda": "ensemble_q_lambda", "alpha_entropy": "alpha_entropy",
                "behavior_ckpt_file": "behavior_ckpt_file"}


def validate(config: BRACConfig) -> None:
    """Raise ValueError with one line naming the first bad field."""
    c = config
    if c.form not in DIVERGENCES:
        raise ValueError(f"brac: form must be one of {', '.join(DIVERGENCES)}, got {c.form!r}")
    if c.divergence not in DIVERGENCES[c.form]:
        raise ValueError(f"brac_{c.form}: unknown divergence {c.divergence!r}; valid: "
                         f"{', '.join(DIVERGENCES[c.form])}")
    for name in ("alpha", "alpha_entropy", "warm_start", "behavior_steps", "gp_coef"):
        if getattr(c, name) < 0:
            raise ValueError(f"brac: {name} must be >= 0, got {getattr(c, name)}")
    for name in ("alpha_lr", "q_lr", "actor_lr", "critic_lr", "behavior_lr", "n_q", "c_iter", "n_div_samples",
                 "mmd_sigma", "tau", "discount", "batch_size", "steps", "eval_every"):
        if getattr(c, name) <= 0:
            raise ValueError(f"brac: {name} must be positive, got {getattr(c, name)}")
    for name in ("q_hidden", "actor_hidden", "critic_hidden", "behavior_hidden"):
        if not getattr(c, name) or any(int(h) <= 0 for h in getattr(c, name)):
            raise ValueError(f"brac: {name} must be positive sizes, got {getattr(c, name)}")
    if c.eval_policy not in EVAL_POLICIES or c.mmd_kernel not in KERNELS:
        raise ValueError(f"brac: eval_policy must be one of {EVAL_POLICIES} and mmd_kernel one of {KERNELS}, "
                         f"got {c.eval_policy!r}, {c.mmd_kernel!r}")
    if not 0.0 <= c.ensemble_q_lambda <= 1.0 or c.tau > 1 or c.discount > 1:
        raise ValueError("brac: need 0 <= ensemble_q_lambda <= 1, tau <= 1 and discount <= 1")
    if c.behavior_ckpt_file and c.form != "primal":
        raise ValueError("brac_dual has no behavior policy; --behavior_ckpt_file is for brac_primal")


def read_behavior_policy(path, spec: Optional[Spec] = None, task_name: Optional[str] = None):
    """An exported tanh-Gaussian policy to serve as BRAC's π_b (``--behavior_ckpt_file``): a policy directory or
    a run directory (its policy_final/), checked against the task's dimensions; mistakes are one line."""
    p = Path(path)
    if (p / "policy_final" / "policy.json").is_file():
        p = p / "policy_final"
    where = f"--behavior_ckpt_file {path}"
    if not (p / "policy.json").is_file():
        raise UserError(f"{where}: no exported policy there (give a policy directory, or a run directory with "
                        f"policy_final/, e.g. of offline.py --algorithm bc)")
    policy = load_policy(p)
    if getattr(policy, "kind", None) != "tanh_gaussian" or policy.obs_mean is not None:
        raise UserError(f"{where}: π_b must be a tanh_gaussian policy without an observation normalizer (a bc or "
                        f"sac run's policy), not {getattr(policy, 'kind', '?')}"
                        + (" with a normalizer" if getattr(policy, "obs_mean", None) is not None else ""))
    if (policy.log_std_min, policy.log_std_max) != (LOG_STD_MIN, LOG_STD_MAX):
        raise UserError(f"{where}: π_b's log-std range is [{policy.log_std_min}, {policy.log_std_max}], BRAC's is "
                        f"[{LOG_STD_MIN}, {LOG_STD_MAX}]")
    if spec is not None and (policy.obs_dim, policy.act_dim) != (spec.obs_dim, spec.act_dim):
        task = f"task {task_name}" if task_name else "this task"
        trained = policy.metadata.get("task")
        raise UserError(f"{where}: the policy has obs_dim {policy.obs_dim} and act_dim {policy.act_dim}"
                        f"{f' (task {trained})' if trained else ''}, {task} has {spec.obs_dim} and {spec.act_dim}")
    return policy


def finalize(config: BRACConfig) -> BRACConfig:
    """With ``behavior_ckpt_file``: no cloning phase, and π_b's sizes are those of the given policy."""
    if not config.behavior_ckpt_file:
        return config
    policy = read_behavior_policy(config.behavior_ckpt_file)
    return dataclasses.replace(config, behavior_steps=0, behavior_hidden=tuple(policy.hidden_sizes))
