"""Soft actor-critic with BRAC's recipe, on the agent contract (bremen.algos.agent).

One agent serves three uses: the online learner that makes behavior policies (``bremen train-behavior``,
bremen.learners.online_sac: minibatches drawn on the device from its replay buffer), the deployment-limited
SAC of BREMEN's comparison (``recursive.py --algorithm sac``: each batch collected with the actor's own
samples, the policy fixed during the collection, then ``steps`` updates on all real data so far) and the
unregularized offline baseline (``offline.py --algorithm sac``), the naive method the behavior-regularized
ones are built to beat.

The actor is the tanh-squashed Gaussian of bremen.algos.agent (its equations are there). Each update, in
BRAC's order (its ``sac_agent``):

1. target critics  Q̄_k ← τ·Q_k + (1 − τ)·Q̄_k   (before the gradient steps);
2. critics: y = r + γ·(1 − terminal)·(min_k Q̄_k(s', a') − α·log π(a'|s')), a' ~ π(·|s'),
   loss Σ_k mean_B (Q_k(s, a) − y)². Only a true termination zeroes the bootstrap; a time-limit
   truncation keeps it (``terminals`` is 1 only on a termination);
3. actor (with the new critics): mean_B (α·log π(a|s) − min_k Q_k(s, a)), a ~ π(·|s) reparameterised;
4. temperature (with the new actor): mean_B α·(−log π(a|s) − H̄) minimised over log α, H̄ = −|A|.

The evaluation policy is the deterministic a = m + h·tanh(μ(s)); exported as a ``tanh_gaussian`` policy, whose
stochastic samples are a deployment's exploration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bremen.algos.agent import (Batch, Spec, actor_init, actor_mode, actor_sample, adam_step, critic_step, q_apply,
                                q_init, soft_update, tanh_gaussian_export)
from bremen.io.policy_io import NumpyPolicy

NAME = "sac"


@dataclass(frozen=True)
class SACConfig:
    """SAC's hyperparameters (defaults: BRAC's online SAC that trains the partial-target policy)."""

    q_hidden: tuple = (300, 300)
    """Hidden layer sizes of each Q network (ReLU, input concat(s, a))."""
    actor_hidden: tuple = (200, 200)
    """Hidden layer sizes of the actor (ReLU, output 2·|A|: mean and raw log-std)."""
    n_q: int = 2
    """Number of Q networks; the target and the actor use the minimum over them."""
    q_lr: float = 5e-4
    """Adam learning rate of the Q networks."""
    actor_lr: float = 5e-4
    """Adam learning rate of the actor."""
    alpha_lr: float = 5e-4
    """Adam learning rate of log α (the entropy temperature)."""
    batch_size: int = 256
    """Minibatch size of every update."""
    tau: float = 0.005
    """Polyak rate of the target Q networks, applied every update before the gradient steps."""
    discount: float = 0.99
    """Discount γ; the bootstrap is zeroed only on true termination."""
    init_log_alpha: float = 0.0
    """Initial log α (α = 1)."""
    target_entropy: Optional[float] = None
    """Target entropy H̄ of the temperature loss; None means −|A|."""
    log_std_min: float = -5.0
    """Lower end of the actor's log-std range."""
    log_std_max: float = 0.0
    """Upper end of the actor's log-std range."""


@dataclass(frozen=True)
class SACAgentConfig(SACConfig):
    """SAC's hyperparameters and the schedule of training on given data (offline, or between deployments);
    the online learner has its own schedule (bremen.learners.online_sac.OnlineSACConfig)."""

    steps: int = 200_000
    """Updates per deployment (offline: in all); the default is one update per step of a 200k-step
    deployment, online SAC's update-to-data ratio over each new batch."""
    eval_every: int = 10_000
    """Updates between evaluations."""


def sac_to_json(config: SACConfig) -> dict:
    """The config as JSON values (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def sac_from_json(d: dict) -> SACConfig:
    return SACConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# "cpu": BRAC's networks kept (Q 2 x 300-300, actor 200-200: 120-128 updates/s here, bench/results/sac_speed.json);
# 20k updates per deployment, one per real step of the recursive cpu plan's 20k-step deployments (~3 min each).
PRESETS = {
    "paper": {},
    "cpu": {"steps": 20_000, "eval_every": 5_000},
    "smoke": {"actor_hidden": (32, 32), "q_hidden": (32, 32), "steps": 200, "eval_every": 100, "batch_size": 64},
}

OPTION_NAMES: dict = {}  # no seed repository of its own: settings through --set algo.KEY=VALUE


def validate(config: SACConfig) -> None:
    """Raise ValueError with one line naming the first bad field."""
    c = config
    names = ("q_lr", "actor_lr", "alpha_lr", "batch_size", "n_q", "tau")
    for name in names + (("steps", "eval_every") if isinstance(c, SACAgentConfig) else ()):
        if getattr(c, name) <= 0:
            raise ValueError(f"sac: {name} must be positive, got {getattr(c, name)}")
    if not 0 <= c.discount < 1 or c.tau > 1:
        raise ValueError(f"sac: need 0 <= discount < 1 and 0 < tau <= 1, got {c.discount}, {c.tau}")
    if c.log_std_min >= c.log_std_max:
        raise ValueError(f"sac: log_std_min must be < log_std_max, got [{c.log_std_min}, {c.log_std_max}]")
    for name in ("actor_hidden", "q_hidden"):
        if not getattr(c, name) or any(int(h) <= 0 for h in getattr(c, name)):
            raise ValueError(f"sac: {name} must be positive sizes, got {getattr(c, name)}")


class SACState(NamedTuple):
    """Everything that changes during training, as one pytree."""

    actor: list
    q: list
    q_target: list
    actor_opt: optax.OptState
    q_opt: optax.OptState
    alpha_opt: optax.OptState
    log_alpha: jax.Array
    step: jax.Array
    key: jax.Array


def td_target(reward, terminal, next_q_min, next_log_prob, alpha, discount):
    """y = r + γ·(1 − terminal)·(min_k Q̄_k(s', a') − α·log π(a'|s')). Truncation is not a terminal."""
    return reward + discount * (1.0 - terminal) * (next_q_min - alpha * next_log_prob)


@dataclass(frozen=True)
class SAC:
    """SAC behind the agent contract; ``config`` is a :class:`SACConfig` (or the registry's
    :class:`SACAgentConfig`, whose schedule fields the learner reads)."""

    spec: Spec
    config: SACConfig = SACAgentConfig()

    def __post_init__(self):
        validate(self.config)

    @property
    def target_entropy(self) -> float:
        c = self.config
        return -float(self.spec.act_dim) if c.target_entropy is None else float(c.target_entropy)

    def _opts(self):
        c = self.config
        return optax.adam(c.actor_lr), optax.adam(c.q_lr), optax.adam(c.alpha_lr)

    def init(self, key) -> SACState:
        """Glorot-uniform actor and critics (zero biases), targets equal to the critics, log α = init."""
        c = self.config
        k_actor, k_q, key = jax.random.split(key, 3)
        actor = actor_init(k_actor, self.spec, c.actor_hidden)
        q = q_init(k_q, self.spec, c.q_hidden, c.n_q)
        log_alpha = jnp.asarray(c.init_log_alpha, jnp.float32)
        actor_opt, q_opt, alpha_opt = self._opts()
        return SACState(actor, q, q, actor_opt.init(actor), q_opt.init(q), alpha_opt.init(log_alpha), log_alpha,
                        jnp.asarray(0, jnp.int32), key)

    def sample(self, actor, obs, key):
        """A reparameterised sample a = m + h·tanh(μ + σε) and its log-probability."""
        a, logp, _ = actor_sample(actor, obs, key, self.spec, self.config.log_std_min, self.config.log_std_max)
        return a, logp

    def update(self, state: SACState, batch: Batch):
        """One update (steps 1–4 of the module docstring); pure and jittable."""
        c = self.config
        actor_opt, q_opt, alpha_opt = self._opts()
        key, k_next, k_pi, k_alpha = jax.random.split(state.key, 4)
        obs, act = batch.observations, batch.actions
        alpha = jnp.exp(state.log_alpha)

        # 1. target critics move before the gradient steps (BRAC's order)
        q_target = soft_update(state.q_target, state.q, c.tau)

        # 2. critics
        next_act, next_logp = self.sample(state.actor, batch.next_observations, k_next)
        next_q_min = jnp.min(q_apply(q_target, batch.next_observations, next_act), axis=0)
        y = jax.lax.stop_gradient(td_target(batch.rewards, batch.terminals, next_q_min, next_logp, alpha, c.discount))
        q, q_opt_state, q_loss, qs = critic_step(q_opt, state.q, state.q_opt, obs, act, y)

        # 3. actor, against the updated critics
        def actor_loss_fn(actor):
            a, logp = self.sample(actor, obs, k_pi)
            return jnp.mean(alpha * logp - jnp.min(q_apply(q, obs, a), axis=0)), logp

        (actor_loss, logp), grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(state.actor)
        actor, actor_opt_state = adam_step(actor_opt, grads, state.actor_opt, state.actor)

        # 4. temperature, with a fresh sample of the updated actor
        logp_new = jax.lax.stop_gradient(self.sample(actor, obs, k_alpha)[1])
        alpha_loss_fn = lambda la: jnp.mean(jnp.exp(la) * (-logp_new - self.target_entropy))  # noqa: E731
        alpha_loss, grad = jax.value_and_grad(alpha_loss_fn)(state.log_alpha)
        log_alpha, alpha_opt_state = adam_step(alpha_opt, grad, state.alpha_opt, state.log_alpha)

        new = SACState(actor, q, q_target, actor_opt_state, q_opt_state, alpha_opt_state, log_alpha,
                       state.step + 1, key)
        info = {"q_loss": q_loss, "actor_loss": actor_loss, "alpha_loss": alpha_loss, "alpha": jnp.exp(log_alpha),
                "entropy": -jnp.mean(logp), "q_mean": jnp.mean(qs)}
        return new, info

    def act(self, state: SACState, obs, key=None):
        """The deterministic test policy a = m + h·tanh(μ(s))."""
        return actor_mode(state.actor, obs, self.spec, self.config.log_std_min, self.config.log_std_max)

    def export(self, state: SACState):
        c = self.config
        return tanh_gaussian_export(state.actor, self.spec, c.actor_hidden, c.log_std_min, c.log_std_max)


def actor_policy(agent: SAC, actor, metadata: Optional[dict] = None) -> NumpyPolicy:
    """The SAC actor as a NumPy ``tanh_gaussian`` policy."""
    layers = [{"w": np.asarray(l["w"]), "b": np.asarray(l["b"])} for l in actor]
    c, spec = agent.config, agent.spec
    return NumpyPolicy("tanh_gaussian", layers, np.asarray(spec.act_low, np.float32),
                       np.asarray(spec.act_high, np.float32), "relu", c.log_std_min, c.log_std_max, metadata=metadata)
