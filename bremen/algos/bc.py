"""Behavior cloning of the data's policy into the Gaussian MLP policy.

Loss (original): the mean squared error between the dataset action and a *reparameterized sample*

    L(θ) = mean_{batch, dims} ( a − (μ_θ(s) + ξ ⊙ σ_θ(s)) )²,   ξ ~ 𝒩(0, I),

whose expectation is ‖a − μ‖² + Σσ², so BC also drives σ to its floor e⁻⁵ ≈ 0.0067 (quirk 2, kept: after
BC initialization the TRPO policy's own σ is tiny and exploration comes from the fixed sampling std).
Adam, lr 5e-4, batch 256, 300,000 steps. The policy's observation statistics are updated with all BC
observations before training and are not trained.

Where this differs from the original: minibatches are drawn uniformly with replacement on the device
(the original reshuffled an in-memory collection every epoch with a fixed seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import optax

from bremen.models import normalizer
from bremen.models.policy import NORMC_SEED, dist, policy_init
from bremen.models.waiting import wait


@dataclass(frozen=True)
class BCConfig:
    """Behavior cloning hyperparameters (defaults: the original's `behavior_policy` config)."""

    steps: int = 300_000
    """Total Adam steps per fit."""
    batch_size: int = 256
    """Minibatch size."""
    lr: float = 5e-4
    """Adam learning rate (other Adam settings at their defaults)."""
    hidden: Sequence[int] = (200, 200)
    """Hidden layer sizes of the policy MLP."""
    activation: str = "relu"
    """Hidden activation of the policy MLP."""
    init_seed: Optional[int] = NORMC_SEED
    """Fixed NumPy seed of the normc init (1234: identical weights at every fit, quirk 8); None: from the key."""
    steps_per_call: int = 10_000
    """Adam steps per compiled call; the progress callback runs after each (the original logged every 10,000)."""
    act_low: Union[float, tuple] = -1.0
    """Lower action bound of the policy's tanh mean (one float, or one per dimension); the task's."""
    act_high: Union[float, tuple] = 1.0
    """Upper action bound."""


class BCState(NamedTuple):
    """Everything a BC fit produces and a later fit may continue from."""

    params: list
    stats: normalizer.RunningStats
    opt_state: optax.OptState
    step: jnp.ndarray


def bc_loss(params, stats, obs, act, key, activation: str = "relu", act_low=-1.0, act_high=1.0):
    """Sampled-action MSE, averaged over batch and action dimensions."""
    mu, log_std = dist(params, stats, obs, activation, act_low, act_high)
    pred = mu + jnp.exp(log_std) * jax.random.normal(key, mu.shape, mu.dtype)
    return jnp.mean((act - pred) ** 2)


@partial(jax.jit, static_argnames=("n_steps", "batch_size", "activation", "act_low", "act_high"))
def bc_update(state: BCState, obs, act, key, lr, n_steps: int, batch_size: int, activation: str = "relu",
              act_low=-1.0, act_high=1.0):
    """``n_steps`` Adam steps in one ``lax.scan``; minibatches sampled on device from ``obs``/``act``.

    Returns ``(state, losses [n_steps])``.
    """
    opt = optax.adam(lr)

    def one(carry, k):
        params, opt_state = carry
        k_idx, k_noise = jax.random.split(k)
        idx = jax.random.randint(k_idx, (batch_size,), 0, obs.shape[0])
        loss, grads = jax.value_and_grad(bc_loss)(params, state.stats, obs[idx], act[idx], k_noise, activation,
                                                  act_low, act_high)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(one, (state.params, state.opt_state), jax.random.split(key, n_steps))
    return BCState(params, state.stats, opt_state, state.step + n_steps), losses


def bc_init(
    key,
    obs,
    act_dim: int,
    config: BCConfig = BCConfig(),
    stats: Optional[normalizer.RunningStats] = None,
    opt_state: Optional[optax.OptState] = None,
) -> BCState:
    """A freshly initialized BC policy whose statistics have absorbed ``obs``.

    ``stats``: statistics to continue (recursive: the BC statistics accumulate over every batch ever
    cloned, §8.4); None starts empty. ``opt_state``: an Adam state to continue (the original never resets
    the BC Adam moments, even though it re-initializes the weights); None starts a fresh one.
    """
    obs = jnp.asarray(obs, jnp.float32)
    stats = normalizer.update(stats if stats is not None else normalizer.running_stats_init(obs.shape[-1]), obs)
    params = policy_init(key, obs.shape[-1], act_dim, config.hidden, config.init_seed)
    if opt_state is None:
        opt_state = optax.adam(config.lr).init(params)
    return BCState(params, stats, opt_state, jnp.zeros((), jnp.int32))


def fit_bc(
    key,
    obs,
    act,
    config: BCConfig = BCConfig(),
    stats: Optional[normalizer.RunningStats] = None,
    opt_state: Optional[optax.OptState] = None,
    callback: Optional[Callable[[int, float, BCState], None]] = None,
):
    """Clone ``act`` given ``obs`` for ``config.steps`` steps.

    Runs compiled chunks of ``steps_per_call`` steps and calls ``callback(step, mean_loss, state)`` after
    each (e.g. to log, or to evaluate the BC policy in the real env as the original did every 10,000
    steps). Returns ``(state, losses)`` with one mean loss per chunk.
    """
    k_init, k_train = jax.random.split(key)
    obs = jnp.asarray(obs, jnp.float32)
    act = jnp.asarray(act, jnp.float32)
    state = bc_init(k_init, obs, act.shape[-1], config, stats, opt_state)
    losses, done = [], 0
    for k in jax.random.split(k_train, -(-config.steps // config.steps_per_call)):
        n = min(config.steps_per_call, config.steps - done)
        state, chunk = bc_update(state, obs, act, k, config.lr, n, config.batch_size, config.activation,
                                 config.act_low, config.act_high)
        done += n
        losses.append(float(jnp.mean(wait(chunk))))
        if callback is not None:
            callback(done, losses[-1], state)
    return state, losses
