"""Soft actor-critic with BRAC's recipe (the online learner that makes behavior policies).

The actor is a tanh-squashed Gaussian. For an observation s the MLP outputs (μ, l) and

    log σ = log_std_min + ½(log_std_max − log_std_min)·(tanh(l) + 1)      ∈ [−5, 0] by default
    u = μ + σ·ε,  ε ~ N(0, I),        a = m + h·tanh(u)

with m, h the midpoint and half-range of the action box. By the change of variables a = m + h·tanh(u),

    log π(a|s) = log N(u; μ, σ²) − Σ_i log(h_i·(1 − tanh²(u_i)))
    log(1 − tanh²(u)) = 2·(log 2 − u − softplus(−2u))                    (stable form)

The deterministic ("main") policy is a = m + h·tanh(μ).

Each update, in BRAC's order (its ``sac_agent``):

1. target critics  Q̄_k ← τ·Q_k + (1 − τ)·Q̄_k   (before the gradient steps);
2. critics: y = r + γ·(1 − terminal)·(min_k Q̄_k(s', a') − α·log π(a'|s')), a' ~ π(·|s'),
   loss Σ_k mean_B (Q_k(s, a) − y)². Only a true termination zeroes the bootstrap; a time-limit
   truncation keeps it (the replay buffer stores terminals and timeouts separately);
3. actor (with the new critics): mean_B (α·log π(a|s) − min_k Q_k(s, a)), a ~ π(·|s) reparameterised;
4. temperature (with the new actor): mean_B α·(−log π(a|s) − H̄) minimised over log α, H̄ = −|A|.

Agent state is a pytree (:class:`SACState`); :meth:`SAC.update` and :meth:`SAC.update_many` (K updates in
one compiled call with ``lax.scan``) are pure and jitted. The critics are one parameter pytree with a
leading ensemble axis, evaluated with ``vmap``.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bremen.models.nets import mlp_apply, mlp_init

LOG2 = float(np.log(2.0))


@dataclass(frozen=True)
class SACConfig:
    """Hyperparameters of SAC (defaults: BRAC's online SAC that trains the partial-target policy)."""

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
    warmup_steps: int = 10_000
    """Environment steps with uniform-random actions before the first update."""
    buffer_capacity: int = 1_000_000
    """Replay buffer capacity (circular)."""


def sac_to_json(config: "SACConfig") -> dict:
    """The config as JSON values (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def sac_from_json(d: dict) -> "SACConfig":
    return SACConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


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


def log_std_from_raw(raw, lo: float, hi: float):
    """log σ = lo + ½(hi − lo)·(tanh(raw) + 1), a smooth map of ℝ onto [lo, hi]."""
    return lo + 0.5 * (hi - lo) * (jnp.tanh(raw) + 1.0)


def tanh_gaussian_log_prob(u, mu, log_std, half_range):
    """log π(a) of a = m + h·tanh(u), u ~ N(μ, σ²), evaluated at the pre-squash sample u.

    log π(a) = Σ_i [−½((u_i − μ_i)/σ_i)² − log σ_i − ½ log 2π] − Σ_i log(h_i·(1 − tanh²(u_i))).
    """
    z = (u - mu) * jnp.exp(-log_std)
    gauss = jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)
    log_det = jnp.sum(2.0 * (LOG2 - u - jax.nn.softplus(-2.0 * u)) + jnp.log(half_range), axis=-1)
    return gauss - log_det


def td_target(reward, terminal, next_q_min, next_log_prob, alpha, discount):
    """y = r + γ·(1 − terminal)·(min_k Q̄_k(s', a') − α·log π(a'|s')). Truncation is not a terminal."""
    return reward + discount * (1.0 - terminal) * (next_q_min - alpha * next_log_prob)


class SAC:
    """SAC for one observation/action shape and action box.

    ``init(key)`` makes a :class:`SACState`; ``update(state, batch)`` and ``update_many(state, batches)``
    are jitted pure functions. A batch is a dict with ``obs [B, obs]``, ``act [B, act]``, ``rew [B]``,
    ``next_obs [B, obs]``, ``terminal [B]`` (float or bool); ``update_many`` takes the same keys stacked
    ``[K, B, ...]`` and returns the infos averaged over the K updates.
    """

    def __init__(self, obs_dim: int, act_dim: int, act_low, act_high, config: SACConfig = SACConfig()):
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.config = config
        low = np.broadcast_to(np.asarray(act_low, np.float32), (act_dim,))
        high = np.broadcast_to(np.asarray(act_high, np.float32), (act_dim,))
        self.act_low, self.act_high = low.copy(), high.copy()
        self.act_mid = (high + low) / 2.0
        self.act_half = (high - low) / 2.0
        self.target_entropy = -float(act_dim) if config.target_entropy is None else float(config.target_entropy)
        self.q_opt = optax.adam(config.q_lr)
        self.actor_opt = optax.adam(config.actor_lr)
        self.alpha_opt = optax.adam(config.alpha_lr)
        self.update = jax.jit(self._update)
        self.update_many = jax.jit(self._update_many)
        self.deterministic_action = jax.jit(self._deterministic_action)
        self.sample_action = jax.jit(self._sample_action)

    # ----------------------------------------------------------------------------- networks
    def init(self, key) -> SACState:
        """Glorot-uniform actor and critics (zero biases), targets equal to the critics, log α = init."""
        c = self.config
        k_actor, k_q, key = jax.random.split(key, 3)
        actor = mlp_init(k_actor, [self.obs_dim, *c.actor_hidden, 2 * self.act_dim])
        q_sizes = [self.obs_dim + self.act_dim, *c.q_hidden, 1]
        q = jax.vmap(lambda k: mlp_init(k, q_sizes))(jax.random.split(k_q, c.n_q))
        log_alpha = jnp.asarray(c.init_log_alpha, jnp.float32)
        return SACState(
            actor=actor,
            q=q,
            q_target=q,
            actor_opt=self.actor_opt.init(actor),
            q_opt=self.q_opt.init(q),
            alpha_opt=self.alpha_opt.init(log_alpha),
            log_alpha=log_alpha,
            step=jnp.asarray(0, jnp.int32),
            key=key,
        )

    def actor_head(self, actor, obs):
        """(μ, log σ) of the pre-squash Gaussian."""
        out = mlp_apply(actor, obs, "relu")
        mu, raw = jnp.split(out, 2, axis=-1)
        return mu, log_std_from_raw(raw, self.config.log_std_min, self.config.log_std_max)

    def _sample_action(self, actor, obs, key):
        """A reparameterised sample a = m + h·tanh(μ + σε) and its log-probability."""
        mu, log_std = self.actor_head(actor, obs)
        u = mu + jnp.exp(log_std) * jax.random.normal(key, mu.shape, mu.dtype)
        a = self.act_mid + self.act_half * jnp.tanh(u)
        return a, tanh_gaussian_log_prob(u, mu, log_std, self.act_half)

    def _deterministic_action(self, actor, obs):
        """The mode of the squashed policy's pre-image: a = m + h·tanh(μ)."""
        mu, _ = self.actor_head(actor, obs)
        return self.act_mid + self.act_half * jnp.tanh(mu)

    @staticmethod
    def q_values(q, obs, act):
        """Q_k(s, a) for every critic k: shape [n_q, B]."""
        x = jnp.concatenate([obs, act], axis=-1)
        return jax.vmap(lambda p: mlp_apply(p, x, "relu")[..., 0])(q)

    # ----------------------------------------------------------------------------- update
    def _update(self, state: SACState, batch: dict):
        c = self.config
        key, k_next, k_pi, k_alpha = jax.random.split(state.key, 4)
        obs, act, rew, next_obs = batch["obs"], batch["act"], batch["rew"], batch["next_obs"]
        terminal = batch["terminal"].astype(jnp.float32)
        alpha = jnp.exp(state.log_alpha)

        # 1. target critics move before the gradient steps (BRAC's order)
        q_target = jax.tree.map(lambda t, s: (1.0 - c.tau) * t + c.tau * s, state.q_target, state.q)

        # 2. critics
        next_act, next_logp = self._sample_action(state.actor, next_obs, k_next)
        next_q_min = jnp.min(self.q_values(q_target, next_obs, next_act), axis=0)
        y = jax.lax.stop_gradient(td_target(rew, terminal, next_q_min, next_logp, alpha, c.discount))

        def q_loss_fn(q):
            qs = self.q_values(q, obs, act)
            return jnp.sum(jnp.mean((qs - y) ** 2, axis=-1)), qs

        (q_loss, qs), q_grads = jax.value_and_grad(q_loss_fn, has_aux=True)(state.q)
        q_updates, q_opt = self.q_opt.update(q_grads, state.q_opt, state.q)
        q = optax.apply_updates(state.q, q_updates)

        # 3. actor, against the updated critics
        def actor_loss_fn(actor):
            a, logp = self._sample_action(actor, obs, k_pi)
            q_min = jnp.min(self.q_values(q, obs, a), axis=0)
            return jnp.mean(alpha * logp - q_min), logp

        (actor_loss, logp), a_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(state.actor)
        a_updates, actor_opt = self.actor_opt.update(a_grads, state.actor_opt, state.actor)
        actor = optax.apply_updates(state.actor, a_updates)

        # 4. temperature, with a fresh sample of the updated actor
        _, logp_new = self._sample_action(actor, obs, k_alpha)
        logp_new = jax.lax.stop_gradient(logp_new)

        def alpha_loss_fn(log_alpha):
            return jnp.mean(jnp.exp(log_alpha) * (-logp_new - self.target_entropy))

        alpha_loss, al_grad = jax.value_and_grad(alpha_loss_fn)(state.log_alpha)
        al_update, alpha_opt = self.alpha_opt.update(al_grad, state.alpha_opt, state.log_alpha)
        log_alpha = optax.apply_updates(state.log_alpha, al_update)

        new_state = SACState(actor, q, q_target, actor_opt, q_opt, alpha_opt, log_alpha, state.step + 1, key)
        info = {
            "q_loss": q_loss,
            "actor_loss": actor_loss,
            "alpha_loss": alpha_loss,
            "alpha": jnp.exp(log_alpha),
            "entropy": -jnp.mean(logp),
            "q_mean": jnp.mean(qs),
        }
        return new_state, info

    def _update_many(self, state: SACState, batches: dict):
        state, infos = jax.lax.scan(self._update, state, batches)
        return state, jax.tree.map(jnp.mean, infos)
