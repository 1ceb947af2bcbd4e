"""MOPO (Yu et al., 2020): SAC on real and penalized model transitions.

The dynamics ensemble is probabilistic (bremen.models.probabilistic: Gaussian members, 7 trained, the 5 with
the lowest validation error the elites). Every ``rollout_every`` SAC updates, ``rollout_batch_size`` states
drawn uniformly from the data start h-step rollouts of the current (stochastic) actor in the model: at each
step a random elite per row samples ŝ' ~ N(μ_k, σ_k²), the task's own reward and termination are applied, and
the reward is penalized by the ensemble's uncertainty

    r̃(s, a) = r(s, a, ŝ') − λ·u(s, a),      u(s, a) = max_k ‖σ_k(s, a)‖₂

with σ_k the std of member k (every member, elite or not) over the predicted dimensions in the data's units (the
state delta's; the reward's too where the ensemble learns it). A row stops at its first termination. The
transitions go into a model buffer holding the last ``retain_rollouts`` rollouts; each SAC minibatch takes a
fraction ``real_ratio`` of its rows from the data and the rest from the model buffer.

Settings and their sources (MOPO's public code, tianheyu927/mopo: examples/config/d4rl/*.py, base.py;
docs/model-based-offline.md has the table): h and λ per task from its D4RL "medium" configs offline
(halfcheetah 1 / 1.0, hopper 5 / 5.0, walker2d 5 / 5.0) and from its "medium-replay" configs in a recursive run
(5 / 1.0, 5 / 1.0, 1 / 1.0), rollout batch 50,000, one rollout per 1000 updates, 5 rollouts retained, real
ratio 0.05, SAC with Adam 3e-4, 256-256 networks, batch 256, target entropy −3 (the code's value for every
task), 1000 epochs of 1000 updates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp

from bremen.algos.agent import Batch, Spec, actor_sample
from bremen.algos.sac import SACConfig, validate as validate_sac
from bremen.models import probabilistic as prob
from bremen.models.dynamics import denormalize
from bremen.models.normalizer import normalize_inputs

NAME, LABEL = "mopo", "MOPO"

MOPO_SAC = SACConfig(q_hidden=(256, 256), actor_hidden=(256, 256), q_lr=3e-4, actor_lr=3e-4, alpha_lr=3e-4,
                     target_entropy=-3.0, log_std_min=-5.0, log_std_max=2.0)


@dataclass(frozen=True)
class MOPOConfig:
    """MOPO's settings (defaults: its public code's; per task: :data:`TASKS`)."""

    rollout_length: int = 5
    """h: steps of each model rollout (MOPO's rollout_length)."""
    penalty_coef: float = 1.0
    """λ of the uncertainty penalty (MOPO's penalty_coeff)."""
    rollout_batch_size: int = 50_000
    """Start states per model rollout."""
    rollout_every: int = 1000
    """SAC updates between model rollouts."""
    retain_rollouts: int = 5
    """Model rollouts whose transitions the model buffer keeps (MOPO's model_retain_epochs)."""
    real_ratio: float = 0.05
    """Fraction of every minibatch drawn from the real data."""
    epochs: int = 1000
    """Chunks of ``updates_per_epoch`` SAC updates per deployment (offline: in all); the driver evaluates after each."""
    updates_per_epoch: int = 1000
    """SAC updates per chunk (MOPO's epoch_length)."""
    sac: SACConfig = field(default_factory=lambda: MOPO_SAC)


TASKS = {"half_cheetah": {"rollout_length": 1, "penalty_coef": 1.0},
         "hopper": {"rollout_length": 5, "penalty_coef": 5.0},
         "walker2d": {"rollout_length": 5, "penalty_coef": 5.0}}
"""Per-task h and λ offline: MOPO's D4RL "medium" configs (the closest to a partially trained behavior policy)."""

RECURSIVE_TASKS = {"half_cheetah": {"rollout_length": 5, "penalty_coef": 1.0},
                   "hopper": {"rollout_length": 5, "penalty_coef": 1.0},
                   "walker2d": {"rollout_length": 1, "penalty_coef": 1.0}}
"""Per-task h and λ of a deployment-limited run: MOPO's D4RL "medium-replay" (v0 "mixed") configs, whose data
is what a recursive run gathers, the batches of a policy from random to trained."""

# cpu: the SAC of the cpu plan's SAC baseline in size, 30 epochs of 1000 updates, 5,000 rollout starts.
# smoke: seconds.
PRESETS = {
    "paper": {},
    "cpu": {"epochs": 30, "rollout_batch_size": 5_000},
    "smoke": {"epochs": 2, "updates_per_epoch": 50, "rollout_every": 25, "rollout_batch_size": 64,
              "sac": dataclasses.replace(MOPO_SAC, q_hidden=(32, 32), actor_hidden=(32, 32), batch_size=64)},
}

OPTION_NAMES = {"rollout_length": "rollout_length", "penalty_coeff": "penalty_coef", "real_ratio": "real_ratio",
                "rollout_batch_size": "rollout_batch_size"}
"""MOPO's own option names (its config keys) -> fields."""


def validate(c: MOPOConfig) -> None:
    """Raise ValueError with one line naming the first bad field."""
    for name in ("rollout_length", "rollout_batch_size", "rollout_every", "retain_rollouts", "epochs",
                 "updates_per_epoch"):
        if getattr(c, name) <= 0:
            raise ValueError(f"mopo: {name} must be positive, got {getattr(c, name)}")
    if c.penalty_coef < 0:
        raise ValueError(f"mopo: penalty_coef must be >= 0, got {c.penalty_coef}")
    if not 0 <= c.real_ratio <= 1:
        raise ValueError(f"mopo: real_ratio must be in [0, 1], got {c.real_ratio}")
    if c.updates_per_epoch % c.rollout_every:
        raise ValueError(f"mopo: updates_per_epoch ({c.updates_per_epoch}) must be a multiple of rollout_every "
                         f"({c.rollout_every})")
    validate_sac(c.sac)


def uncertainty(logvar, scale):
    """u = max_k ‖σ_k ⊙ scale‖₂ over the members' log-variances ``[K, n, out]`` (``scale``: the units of the
    normalized outputs, ``[out]``): ``[n]``."""
    return jnp.max(jnp.sqrt(jnp.sum(jnp.exp(logvar) * scale**2, axis=-1)), axis=0)


def output_scale(norm, out_dim: int, obs_dim: int):
    """The data units of the normalized outputs: the state delta's std (and the reward's)."""
    return norm.delta_std if out_dim == obs_dim else jnp.concatenate([norm.delta_std, norm.rew_std[None]])


def penalized_step(ens_params, norm, elites, obs, act, key, env, penalty_coef: float):
    """One MOPO model step for ``obs [n, d]``: ``(next_obs, penalized reward, terminated, u)``."""
    act = jnp.clip(act, jnp.asarray(env.act_low, jnp.float32), jnp.asarray(env.act_high, jnp.float32))
    mean, logvar = prob.apply_all(ens_params, normalize_inputs(norm, obs, act), env.activation)
    k_member, k_noise = jax.random.split(key)
    n = obs.shape[0]
    pick = elites[jax.random.randint(k_member, (n,), 0, elites.shape[0])]
    rows = jnp.arange(n)
    sample = mean[pick, rows] + jnp.exp(0.5 * logvar[pick, rows]) * jax.random.normal(k_noise, mean.shape[1:])
    next_obs, model_reward = denormalize(norm, obs, sample)
    next_obs = jnp.clip(next_obs, -env.obs_clip, env.obs_clip)
    reward = env.reward_fn(obs, act, next_obs) if env.reward_fn is not None else model_reward
    term = (jnp.zeros((n,), bool) if env.termination_fn is None
            else jnp.asarray(env.termination_fn(next_obs), bool))
    u = uncertainty(logvar, output_scale(norm, mean.shape[-1], obs.shape[-1]))
    return next_obs, reward - penalty_coef * u, term, u


@partial(jax.jit, static_argnames=("env", "spec", "horizon", "penalty_coef", "log_std_min", "log_std_max"))
def model_rollout(actor, ens_params, norm, elites, starts, key, *, env, spec: Spec, horizon: int,
                  penalty_coef: float, log_std_min: float, log_std_max: float):
    """h-step rollouts of the actor's samples from ``starts [N, d]``: ``(rows, count, info)``.

    ``rows`` is a :class:`Batch` of ``h·N`` transitions with the ``count`` valid ones first (a row's steps up
    to and including its first termination, in step order); ``info`` the means over valid steps of the
    penalty ``u``, of the penalized reward, and the fraction of rows that terminated."""
    def body(carry, k):
        obs, alive = carry
        k_act, k_step = jax.random.split(k)
        act, _, _ = actor_sample(actor, obs, k_act, spec, log_std_min, log_std_max)
        nxt, rew, term, u = penalized_step(ens_params, norm, elites, obs, act, k_step, env, penalty_coef)
        return (nxt, alive & ~term), (obs, act, rew, nxt, term.astype(jnp.float32), alive, u)

    init = (starts, jnp.ones((starts.shape[0],), bool))
    (_, alive), (obs, act, rew, nxt, term, valid, u) = jax.lax.scan(body, init, jax.random.split(key, horizon))
    flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    valid = flat(valid)
    order = jnp.argsort(~valid, stable=True)
    take = lambda x: flat(x)[order]  # noqa: E731
    rows = Batch(take(obs), take(act), take(rew), take(nxt), take(term), jnp.zeros_like(take(act)))
    count = jnp.sum(valid)
    w = valid / jnp.maximum(count, 1)
    info = {"penalty_mean": jnp.sum(flat(u) * w), "model_reward_mean": jnp.sum(flat(rew) * w),
            "terminated_fraction": 1.0 - jnp.mean(alive)}
    return rows, count, info


DYNAMICS = {"probabilistic": True, "ensemble_size": 7, "elites": 5, "n_layers": 4, "hidden": 200,
            "activation": "swish", "weight_decays": (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)}
"""MOPO's ensemble (its constructor.py): 7 Gaussian members of 4 × 200 swish units, the 5 best the elites,
per-layer weight decay."""


def dynamics_settings(preset: str) -> dict:
    """The DynamicsConfig fields MOPO sets: :data:`DYNAMICS`; the smoke preset keeps its tiny members (all of
    them elites)."""
    return {"probabilistic": True, "elites": 0} if preset == "smoke" else dict(DYNAMICS)
