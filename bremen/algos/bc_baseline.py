"""Behavior cloning by maximum likelihood: BRAC's ``bc`` baseline (Wu, Tucker, Nachum 2019, ``bc_agent``).

Not BREMEN's own BC initialisation (``bremen.algos.bc``). The actor is the tanh-squashed Gaussian of SAC
and BRAC (``bremen.algos.agent.actor_*``): log σ ∈ [−5, 0], a = m + h·tanh(u), u ~ N(μ(s), σ(s)²).
Each update, on a minibatch (s, a) of dataset transitions:

1. actor, with a_π ~ π(·|s) reparameterised and the dataset action moved 1e-3·h inside the box:

       L_π = mean_B [ α_ent·log π(a_π|s) − log π(clip(a)|s) ]                                      (1)

2. entropy temperature (a fresh sample a' of the updated actor, target entropy H̄ = −|A|):

       L_α = mean_B [ α_ent·(−log π(a'|s) − H̄) ]                                                  (2)

With ``loss = "mse"`` the update is instead the deterministic BC of d3rlpy's default ``BCConfig``: the test
policy itself fitted to the dataset actions by squared error (σ and α_ent unused),

       L_mse = mean_{B, dims} ( m + h·tanh(μ(s)) − a )²                                           (3)

α_ent is BRAC's raw variable (not its logarithm), read through ``clip_v2(·, 0, ∞)`` whose gradient passes
wherever a descent step moves the value back inside [0, ∞) (BRAC's ``relu_v2``); it starts at 1.0. Adam with
lr 5e-4 for both. The test policy is the deterministic ("main") a = m + h·tanh(μ(s)).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from bremen.algos.agent import (Batch, Spec, actor_init, actor_log_prob, actor_mode, actor_sample, adam_step,
                                tanh_gaussian_export)

NAME = "bc"


@dataclass(frozen=True)
class BCConfig:
    """Hyperparameters of BRAC's BC baseline (defaults: BRAC's ``run_bc.sh`` and ``bc_agent``)."""

    actor_hidden: tuple = (200, 200)
    """Hidden sizes of the tanh-Gaussian actor π of eq. (1) (ReLU)."""
    loss: str = "likelihood"
    """'likelihood': eqs. (1)-(2), BRAC's BC; 'mse': eq. (3), the deterministic BC of d3rlpy."""
    lr: float = 5e-4
    """Adam learning rate of the actor (eq. 1) and of α_ent (eq. 2)."""
    alpha_entropy: float = 1.0
    """Initial entropy weight α_ent of eqs. (1)-(2)."""
    train_alpha_entropy: bool = True
    """Train α_ent by eq. (2); False keeps it fixed."""
    target_entropy: Optional[float] = None
    """Target entropy H̄ of eq. (2); None means −|A|."""
    log_std_min: float = -5.0
    """Lower end of log σ of π (eq. 1)."""
    log_std_max: float = 0.0
    """Upper end of log σ of π (eq. 1)."""
    clip_eps: float = 1e-3
    """Dataset actions are clipped this fraction of the half-range inside the box in eq. (1)."""
    batch_size: int = 256
    """Minibatch size B of eqs. (1)-(2)."""
    steps: int = 300_000
    """Updates in all (BRAC's script; its committed BC runs went to 500,000)."""
    eval_every: int = 5000
    """Updates between evaluations."""


# "cpu": <= 10 min of updates on the 2-core CPU. Measured (update_many, 1000 updates per call, batch 256, ant's
# 27/8 dims, cores shared with other jobs, load 5-8): 199-251 updates/s with 200-200. Cut: 80k updates (from
# 300k), ≈ 320-400 s; the network is kept.
PRESETS = {
    "paper": {},
    "cpu": {"steps": 80_000},
    "smoke": {"actor_hidden": (32, 32), "steps": 200, "eval_every": 100},
}

# BRAC's gin flags of bc_agent.Agent → BCConfig fields.
OPTION_NAMES = {"alpha_entropy": "alpha_entropy", "train_alpha_entropy": "train_alpha_entropy",
                "target_entropy": "target_entropy"}


LOSSES = ("likelihood", "mse")


def validate(config: BCConfig) -> None:
    """Raise ValueError with one line naming the first bad field."""
    c = config
    if not c.actor_hidden or any(int(h) <= 0 for h in c.actor_hidden):
        raise ValueError(f"bc: actor_hidden must be positive sizes, got {c.actor_hidden}")
    for name in ("lr", "batch_size", "steps", "eval_every", "clip_eps"):
        if getattr(c, name) <= 0:
            raise ValueError(f"bc: {name} must be positive, got {getattr(c, name)}")
    if c.loss not in LOSSES:
        raise ValueError(f"bc: loss must be one of {', '.join(LOSSES)}, got {c.loss!r}")
    if c.alpha_entropy < 0:
        raise ValueError(f"bc: alpha_entropy must be >= 0, got {c.alpha_entropy}")
    if c.clip_eps >= 1 or c.log_std_min >= c.log_std_max:
        raise ValueError(f"bc: need 0 < clip_eps < 1 and log_std_min < log_std_max, got {c.clip_eps}, "
                         f"[{c.log_std_min}, {c.log_std_max}]")


@partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def clip_v2(x, low: float, high: float):
    """clip(x, low, high) whose gradient g passes where a descent step −g moves x back inside (BRAC's clip_v2):
    g > 0 passes if x > low, g ≤ 0 passes if x < high."""
    return jnp.clip(x, low, high)


def _clip_v2_fwd(x, low, high):
    return jnp.clip(x, low, high), x


def _clip_v2_bwd(low, high, x, g):
    return (jnp.where(jnp.where(g > 0, x > low, x < high), g, 0.0),)


clip_v2.defvjp(_clip_v2_fwd, _clip_v2_bwd)


def bc_step(actor, actor_opt, alpha_raw, alpha_opt, obs, act, key, spec: Spec, lr: float, train_alpha: bool,
            target_entropy: float, log_std_min: float, log_std_max: float, clip_eps: float):
    """One update of eqs. (1)-(2); returns (actor, actor_opt, alpha_raw, alpha_opt, info). Shared with BRAC's
    behavior-cloning phase."""
    opt = optax.adam(lr)
    k_pi, k_alpha = jax.random.split(key)
    alpha = clip_v2(alpha_raw, 0.0, jnp.inf)

    def loss_fn(p):
        _, logp_pi, _ = actor_sample(p, obs, k_pi, spec, log_std_min, log_std_max)
        logp_data = actor_log_prob(p, obs, act, spec, log_std_min, log_std_max, clip_eps)
        return jnp.mean(jax.lax.stop_gradient(alpha) * logp_pi - logp_data), (logp_pi, logp_data)

    (loss, (logp_pi, logp_data)), grads = jax.value_and_grad(loss_fn, has_aux=True)(actor)
    actor, actor_opt = adam_step(opt, grads, actor_opt, actor)
    alpha_loss = jnp.zeros(())
    if train_alpha:
        _, logp_new, _ = actor_sample(actor, obs, k_alpha, spec, log_std_min, log_std_max)
        logp_new = jax.lax.stop_gradient(logp_new)
        alpha_loss, g = jax.value_and_grad(
            lambda a: jnp.mean(clip_v2(a, 0.0, jnp.inf) * (-logp_new - target_entropy)))(alpha_raw)
        alpha_raw, alpha_opt = adam_step(opt, g, alpha_opt, alpha_raw)
    info = {"bc_loss": loss, "bc_nll": -jnp.mean(logp_data), "entropy": -jnp.mean(logp_pi),
            "alpha_entropy": clip_v2(alpha_raw, 0.0, jnp.inf), "alpha_entropy_loss": alpha_loss}
    return actor, actor_opt, alpha_raw, alpha_opt, info


def mse_step(actor, actor_opt, obs, act, spec: Spec, lr: float, log_std_min: float, log_std_max: float):
    """One update of eq. (3); returns (actor, actor_opt, info)."""
    loss, grads = jax.value_and_grad(
        lambda p: jnp.mean((actor_mode(p, obs, spec, log_std_min, log_std_max) - act) ** 2))(actor)
    actor, actor_opt = adam_step(optax.adam(lr), grads, actor_opt, actor)
    return actor, actor_opt, {"bc_loss": loss}


class BCState(NamedTuple):
    actor: list
    actor_opt: optax.OptState
    alpha_entropy: jax.Array
    """BRAC's raw α_ent variable (read through clip_v2)."""
    alpha_entropy_opt: optax.OptState
    step: jax.Array
    key: jax.Array


@dataclass(frozen=True)
class BC:
    """BRAC's BC baseline as a pure JAX agent (the contract of ``bremen.algos.agent``)."""

    spec: Spec
    config: BCConfig = BCConfig()

    def __post_init__(self):
        validate(self.config)

    @property
    def target_entropy(self) -> float:
        t = self.config.target_entropy
        return -float(self.spec.act_dim) if t is None else float(t)

    def init(self, key) -> BCState:
        c = self.config
        k_actor, key = jax.random.split(key)
        actor = actor_init(k_actor, self.spec, c.actor_hidden)
        alpha = jnp.asarray(c.alpha_entropy, jnp.float32)
        opt = optax.adam(c.lr)
        return BCState(actor, opt.init(actor), alpha, opt.init(alpha), jnp.asarray(0, jnp.int32), key)

    def update(self, state: BCState, batch: Batch):
        c = self.config
        key, k = jax.random.split(state.key)
        if c.loss == "mse":
            actor, actor_opt, info = mse_step(state.actor, state.actor_opt, batch.observations, batch.actions, self.spec, c.lr,
                                              c.log_std_min, c.log_std_max)
            return state._replace(actor=actor, actor_opt=actor_opt, step=state.step + 1, key=key), info
        actor, actor_opt, alpha, alpha_opt, info = bc_step(
            state.actor, state.actor_opt, state.alpha_entropy, state.alpha_entropy_opt, batch.observations, batch.actions, k,
            self.spec, c.lr, c.train_alpha_entropy, self.target_entropy, c.log_std_min, c.log_std_max, c.clip_eps)
        return BCState(actor, actor_opt, alpha, alpha_opt, state.step + 1, key), info

    def act(self, state: BCState, obs, key=None):
        """The deterministic test policy a = m + h·tanh(μ(s))."""
        return actor_mode(state.actor, obs, self.spec, self.config.log_std_min, self.config.log_std_max)

    def export(self, state: BCState):
        c = self.config
        return tanh_gaussian_export(state.actor, self.spec, c.actor_hidden, c.log_std_min, c.log_std_max)
