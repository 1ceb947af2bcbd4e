"""Batch-constrained deep Q-learning (BCQ; Fujimoto, Meger & Precup 2019, continuous version) in pure JAX.

Networks (m, h: midpoint and half-range of the action box):

* a conditional VAE G_ω (shared pieces in :mod:`bremen.algos.agent`): encoder concat(s, a) → (μ_z, log σ_z ∈
  [−4, 15]), decoder concat(s, z) → m + h·tanh(·); a proposal G_ω(s) decodes z ~ N(0, I) clipped to [−0.5, 0.5];
* the perturbation model ξ_θ(s, a) = clip(a + Φ·h·tanh(f_θ(s, a)), low, high), so |ξ_θ(s, a) − a| ≤ Φ·h;
* K = 2 critics Q_k(s, a); target copies Q̄_k and ξ̄ of the critics and of the perturbation model.

One update, in the original's order (sfujim/BCQ ``continuous_BCQ``):

1. VAE:     L_G = mean (Ĝ_ω(s, a) − a)² + ½·mean KL(N(μ_z, σ_z²) ‖ N(0, I));
2. critics: ã_j = ξ̄(s', G_ω(s')), j = 1..n (n = 10), with the updated VAE;
            y = r + γ·(1 − terminal)·max_j [λ·min_k Q̄_k(s', ã_j) + (1 − λ)·max_k Q̄_k(s', ã_j)],  λ = 0.75;
            L_Q = Σ_k mean (Q_k(s, a) − y)²          (terminal is 1 only on a true termination);
3. actor:   L_ξ = −mean Q_1(s, ξ_θ(s, sg[G_ω(s)])) with the updated critics (sg: stop-gradient);
4. targets: Q̄ ← τ·Q + (1 − τ)·Q̄ and ξ̄ ← τ·ξ + (1 − τ)·ξ̄, τ = 0.005.

Action selection (``act``, exported as kind ``argmax_q``): 100 proposals a_j = ξ_θ(s, G_ω(s)), return
argmax_j Q_1(s, a_j).

``variant="brac"`` takes the values of BRAC's re-implementation (Φ 0.15, Q and ξ 300-300, ξ lr 3e-5, 10 samples
for action selection); ``brac_quirks=True`` adds its two quirks: the VAE is stepped at the policy's learning
rate (its own Adam moments) and the target ξ̄ keeps its own random initialisation, never updated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bremen.algos.agent import (Batch, Spec, adam_step, critic_step, q_apply, q_init,
                                soft_clipped_double_q, soft_update, vae_init, vae_loss, vae_sample)
from bremen.models.nets import mlp_apply_concat, mlp_init

NAME = "bcq"
LATENT_CLIP = 0.5  # proposals decode z clipped to [−0.5, 0.5] (both BCQ implementations)


@dataclass(frozen=True)
class BCQConfig:
    """BCQ hyperparameters. Defaults: the original repository (sfujim/BCQ; BASELINES.md B.3). Fields left at
    None take the ``variant``'s value (see :data:`VARIANTS`; ``latent_dim`` None means 2·|A|)."""

    variant: str = "original"
    """"original" (sfujim/BCQ) or "brac" (BRAC's BCQ, BASELINES.md A.3): the values of the None fields."""
    brac_quirks: bool = False
    """Reproduce BRAC's two quirks: VAE stepped at ``actor_lr``; the target ξ̄ never updated (A.3)."""
    vae_hidden: tuple = (750, 750)
    """Hidden sizes of the VAE encoder and of its decoder (750-750 in both implementations)."""
    latent_dim: Optional[int] = None
    """VAE latent size; None: 2·|A| (the original's latent_dim = 2·action_dim)."""
    actor_hidden: Optional[tuple] = None
    """Hidden sizes of the perturbation model ξ_θ on concat(s, a); None: 400-300 (original), 300-300 (brac)."""
    q_hidden: Optional[tuple] = None
    """Hidden sizes of each critic on concat(s, a); None: 400-300 (original), 300-300 (brac)."""
    n_q: int = 2
    """Number of critics K combined by λ·min + (1 − λ)·max in the target (2 in both)."""
    vae_lr: float = 1e-3
    """Adam learning rate of the VAE (1e-3; under ``brac_quirks`` the actor's is used instead)."""
    actor_lr: Optional[float] = None
    """Adam learning rate of ξ_θ; None: 1e-3 (original), 3e-5 (brac)."""
    q_lr: float = 1e-3
    """Adam learning rate of the critics (1e-3 in both)."""
    batch_size: int = 100
    """Minibatch size of every update (100 in both)."""
    discount: float = 0.99
    """Discount γ of the critic target y (step 2)."""
    tau: float = 0.005
    """Polyak rate τ of the target critics and the target ξ̄ (step 4)."""
    lam: float = 0.75
    """λ of the soft clipped double-Q target λ·min_k + (1 − λ)·max_k (step 2; original ``lmbda`` 0.75)."""
    phi: Optional[float] = None
    """Maximum perturbation Φ, in units of the action half-range: |ξ(s, a) − a| ≤ Φ·h; None: 0.05 (original),
    0.15 (brac)."""
    n_target_samples: int = 10
    """Proposals n per next state in the critic target (step 2; 10 in both)."""
    n_action_samples: Optional[int] = None
    """Proposals per state in action selection (argmax of Q_1); None: 100 (original), 10 (brac)."""
    kl_weight: float = 0.5
    """Weight of the KL term of the VAE loss (step 1; 0.5, d3rlpy's ``beta``)."""
    steps: int = 1_000_000
    """Total updates of a run (original: 1e6 iterations; BRAC ran 500,000)."""
    eval_every: int = 5000
    """Updates between evaluations (5,000 in both)."""

    def __post_init__(self):  # lists (from JSON or a command line) become tuples, so the config stays hashable
        for name in ("vae_hidden", "actor_hidden", "q_hidden"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))


VARIANTS = {
    "original": {"phi": 0.05, "actor_hidden": (400, 300), "q_hidden": (400, 300), "actor_lr": 1e-3,
                 "n_action_samples": 100},
    "brac": {"phi": 0.15, "actor_hidden": (300, 300), "q_hidden": (300, 300), "actor_lr": 3e-5,
             "n_action_samples": 10},
}

# Field overrides. cpu: all networks shrink to 256-256 (d3rlpy's default size; cut from VAE 750-750 and critics and
# ξ 400-300) and the run from 1e6 to 18,000 updates (3.6 passes over 500k transitions at batch 100); the rest stays at
# the paper's values. Measured with update_many, 1000 updates per call, while other jobs loaded the 2 cores (load
# 3-9): 42-69 updates/s at hopper's, half_cheetah's and ant's sizes, 31 at worst (ant under load 9), so 18,000
# updates take 4-7 minutes, and under 10 at the worst rate.
PRESETS = {
    "paper": {},
    "cpu": {"vae_hidden": (256, 256), "actor_hidden": (256, 256), "q_hidden": (256, 256), "steps": 18_000,
            "eval_every": 3_000},
    "smoke": {"vae_hidden": (32, 32), "actor_hidden": (32, 32), "q_hidden": (32, 32), "steps": 200,
              "eval_every": 100},
}

# Option names of the BCQ world (original main.py flags, d3rlpy's BCQConfig, BRAC's flags) that are BCQ's own;
# the generic ones (learning rates, tau, batch size, steps) are set with --set algo.KEY=VALUE. d3rlpy's
# n_action_samples sets its target and selection samples alike; here it names the selection samples only.
OPTION_NAMES = {
    "phi": "phi", "action_flexibility": "phi", "lmbda": "lam", "ensemble_q_lambda": "lam",
    "n_action_samples": "n_action_samples", "n_target_samples": "n_target_samples", "beta": "kl_weight",
    "variant": "variant", "brac_quirks": "brac_quirks",
}


def resolve(config: BCQConfig, act_dim: Optional[int] = None) -> BCQConfig:
    """The config with its None fields filled from its variant (and ``latent_dim`` = 2·act_dim when given)."""
    if config.variant not in VARIANTS:
        raise ValueError(f"BCQ variant {config.variant!r} is unknown; valid: {', '.join(VARIANTS)}")
    filled = {k: v for k, v in VARIANTS[config.variant].items() if getattr(config, k) is None}
    if config.latent_dim is None and act_dim is not None:
        filled["latent_dim"] = 2 * int(act_dim)
    return dataclasses.replace(config, **filled)


_positive_int = lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0
_RULES = (  # (fields, test, the valid range)
    (("n_q", "batch_size", "n_target_samples", "n_action_samples", "steps", "eval_every"), _positive_int,
     "a positive integer"),
    (("latent_dim",), lambda v: v is None or _positive_int(v), "a positive integer (None: 2·|A|)"),
    (("vae_hidden", "actor_hidden", "q_hidden"), lambda v: isinstance(v, tuple) and v and all(map(_positive_int, v)),
     "a non-empty sequence of positive integers"),
    (("vae_lr", "actor_lr", "q_lr"), lambda v: v > 0, "> 0"),
    (("tau",), lambda v: 0 < v <= 1, "in (0, 1]"),
    (("lam", "discount"), lambda v: 0 <= v <= 1, "in [0, 1]"),
    (("phi", "kl_weight"), lambda v: v >= 0, ">= 0"),
)


def validate(config: BCQConfig) -> None:
    """Raise ValueError (one line: what is wrong, the valid range) for an invalid config."""
    c = resolve(config)
    for names, test, valid in _RULES:
        for name in names:
            try:
                ok = bool(test(getattr(c, name)))
            except TypeError:
                ok = False
            if not ok:
                raise ValueError(f"BCQ {name} = {getattr(c, name)!r} is invalid; it must be {valid}")


class BCQState(NamedTuple):
    """Everything that changes during training, as one pytree."""

    vae: dict
    actor: list
    actor_target: list
    q: list
    q_target: list
    vae_opt: optax.OptState
    actor_opt: optax.OptState
    q_opt: optax.OptState
    step: jax.Array
    key: jax.Array


def perturb(actor, obs, act, spec: Spec, phi: float):
    """ξ(s, a) = clip(a + Φ·h·tanh(f(s, a)), low, high) (``obs`` may broadcast against ``act``)."""
    shift = phi * spec.half * jnp.tanh(mlp_apply_concat(actor, (obs, act), "relu"))
    return jnp.clip(act + shift, jnp.asarray(spec.act_low), jnp.asarray(spec.act_high))


def first_critic(q):
    """Q_1's parameters, out of the ensemble pytree."""
    return jax.tree.map(lambda x: x[0], q)


def q1_apply(q, obs, act):
    """Q_1(s, a) alone (the actor loss and action selection use only the first critic)."""
    return mlp_apply_concat(first_critic(q), (obs, act), "relu")[..., 0]


@dataclass(frozen=True)
class BCQ:
    """The BCQ agent for one task (hashable: a static argument of ``jax.jit``); the contract of agent.py."""

    spec: Spec
    config: BCQConfig = BCQConfig()

    def __post_init__(self):
        validate(self.config)

    @property
    def c(self) -> BCQConfig:
        return resolve(self.config, self.spec.act_dim)

    def optimizers(self):
        """Adam for (VAE, ξ, critics); BRAC's quirk steps the VAE at the policy's learning rate."""
        c = self.c
        return optax.adam(c.actor_lr if c.brac_quirks else c.vae_lr), optax.adam(c.actor_lr), optax.adam(c.q_lr)

    def init(self, key) -> BCQState:
        """Glorot-uniform networks with zero biases; target critics and ξ̄ copies of the online ones (under the
        quirks ξ̄ is an independent random initialisation)."""
        c, spec = self.c, self.spec
        k_vae, k_actor, k_target, k_q, key = jax.random.split(key, 5)
        actor_sizes = [spec.obs_dim + spec.act_dim, *c.actor_hidden, spec.act_dim]
        vae = vae_init(k_vae, spec, c.vae_hidden, c.latent_dim)
        actor = mlp_init(k_actor, actor_sizes)
        actor_target = mlp_init(k_target, actor_sizes) if c.brac_quirks else actor
        q = q_init(k_q, spec, c.q_hidden, c.n_q)
        vae_opt, actor_opt, q_opt = self.optimizers()
        return BCQState(vae, actor, actor_target, q, q, vae_opt.init(vae), actor_opt.init(actor), q_opt.init(q),
                        jnp.asarray(0, jnp.int32), key)

    def update(self, state: BCQState, batch: Batch):
        """One BCQ update (steps 1–4 of the module docstring); pure and jittable."""
        c, spec = self.c, self.spec
        vae_opt, actor_opt, q_opt = self.optimizers()
        key, k_vae, k_next, k_pi = jax.random.split(state.key, 4)
        terminal = batch.terminals.astype(jnp.float32)

        # 1. VAE
        (l_vae, vae_info), grads = jax.value_and_grad(vae_loss, has_aux=True)(
            state.vae, batch.observations, batch.actions, k_vae, spec, c.latent_dim, c.kl_weight)
        vae, vae_opt_state = adam_step(vae_opt, grads, state.vae_opt, state.vae)

        # 2. critics: max over n perturbed proposals of the soft clipped double-Q of the targets
        next_obs = batch.next_observations  # [B, obs] against n_target_samples proposals [n, B, act]
        proposals, _ = vae_sample(vae, next_obs, k_next, spec, c.latent_dim, LATENT_CLIP, c.n_target_samples)
        next_act = perturb(state.actor_target, next_obs, proposals, spec, c.phi)
        next_v = jnp.max(soft_clipped_double_q(q_apply(state.q_target, next_obs, next_act), c.lam), axis=0)
        y = jax.lax.stop_gradient(batch.rewards + c.discount * (1.0 - terminal) * next_v)

        q, q_opt_state, l_q, qs = critic_step(q_opt, state.q, state.q_opt, batch.observations, batch.actions, y)

        # 3. perturbation model against the updated critics, on proposals of the updated VAE
        proposals = jax.lax.stop_gradient(vae_sample(vae, batch.observations, k_pi, spec, c.latent_dim, LATENT_CLIP)[0])

        def actor_loss_fn(actor):
            return -jnp.mean(q1_apply(q, batch.observations, perturb(actor, batch.observations, proposals, spec, c.phi)))

        l_actor, grads = jax.value_and_grad(actor_loss_fn)(state.actor)
        actor, actor_opt_state = adam_step(actor_opt, grads, state.actor_opt, state.actor)

        # 4. targets
        q_target = soft_update(state.q_target, q, c.tau)
        actor_target = state.actor_target if c.brac_quirks else soft_update(state.actor_target, actor, c.tau)
        new_state = BCQState(vae, actor, actor_target, q, q_target, vae_opt_state, actor_opt_state, q_opt_state,
                             state.step + 1, key)
        info = {"vae_loss": l_vae, **vae_info, "q_loss": l_q, "actor_loss": l_actor, "q_mean": jnp.mean(qs),
                "target_mean": jnp.mean(y)}
        return new_state, info

    def act(self, state: BCQState, obs, key):
        """argmax over ``n_action_samples`` perturbed VAE proposals of Q_1: [N, obs_dim] → [N, act_dim]."""
        c, spec = self.c, self.spec
        proposals, _ = vae_sample(state.vae, obs, key, spec, c.latent_dim, LATENT_CLIP, c.n_action_samples)
        actions = perturb(state.actor, obs, proposals, spec, c.phi)  # [n, N, act]
        best = jnp.argmax(q1_apply(state.q, obs, actions), axis=0)
        return jnp.take_along_axis(actions, best[None, :, None], axis=0)[0]

    def export(self, state: BCQState):
        """The ``argmax_q`` exported policy: (policy.json fields, policy.npz float32 arrays)."""
        c, spec = self.c, self.spec
        arrays = {}
        for prefix, layers in (("proposal", state.vae["dec"]), ("perturb", state.actor),
                               ("q", first_critic(state.q))):
            for i, layer in enumerate(layers):
                arrays[f"{prefix}/layers/{i}/w"] = np.asarray(layer["w"], np.float32)
                arrays[f"{prefix}/layers/{i}/b"] = np.asarray(layer["b"], np.float32)
        fields = {"kind": "argmax_q", "obs_dim": spec.obs_dim, "act_dim": spec.act_dim,
                  "act_low": list(spec.act_low), "act_high": list(spec.act_high), "activation": "relu",
                  "obs_normalizer": None, "hidden_sizes": list(c.vae_hidden), "proposal": "vae",
                  "n_samples": c.n_action_samples, "latent_dim": c.latent_dim, "latent_clip": LATENT_CLIP,
                  "max_perturbation": c.phi, "log_std_min": None, "log_std_max": None, "noise_clip": None}
        return fields, arrays
