"""The contract of bremen's model-free offline agents (BC, BCQ, BEAR, BRAC) and what they share.

An agent is a frozen dataclass ``Agent(spec, config)`` (hashable, so it can be a static argument of
``jax.jit``) with

* ``init(key) -> State``: a NamedTuple pytree holding every array that changes, with fields ``step``
  (int32 updates done) and ``key`` (the PRNG key of the next update);
* ``update(state, batch) -> (state, info)``: one gradient update, pure and jittable; ``batch`` is a
  :class:`Batch` of ``[B, ...]`` arrays; ``info`` a dict of scalar arrays (losses, α, ...);
* ``act(state, obs, key) -> actions``: the evaluation policy for ``obs [N, obs_dim]`` (jittable; the key
  is for the policies that pick the best of sampled actions);
* ``export(state) -> (spec, arrays)``: the evaluation policy in the exported-policy format
  (``bremen.io.policy_io``: the ``policy.json`` fields and the ``policy.npz`` arrays).

:func:`update_many` runs K updates in one compiled call, drawing each minibatch uniformly with
replacement from the device-resident dataset (or replay buffer) inside ``lax.scan`` (BRAC's sampling), so
``jax.vmap`` over stacked states trains many seeds as one program.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bremen.models.nets import mlp_apply, mlp_apply_concat, mlp_init


class Spec(NamedTuple):
    """What an agent needs to know of a task: dimensions and the action box (tuples, so hashable)."""

    obs_dim: int
    act_dim: int
    act_low: tuple
    act_high: tuple

    @classmethod
    def of(cls, obs_dim: int, act_dim: int, act_low, act_high) -> "Spec":
        low = np.broadcast_to(np.asarray(act_low, np.float32), (act_dim,))
        high = np.broadcast_to(np.asarray(act_high, np.float32), (act_dim,))
        return cls(int(obs_dim), int(act_dim), tuple(float(v) for v in low), tuple(float(v) for v in high))

    @property
    def mid(self):
        return (jnp.asarray(self.act_high) + jnp.asarray(self.act_low)) / 2.0

    @property
    def half(self):
        return (jnp.asarray(self.act_high) - jnp.asarray(self.act_low)) / 2.0


class Batch(NamedTuple):
    """One minibatch (or the whole dataset), its fields named as :class:`bremen.data.Dataset`'s: ``terminals``
    is 1.0 only on a true termination, so a time-limit truncation keeps its bootstrap. ``next_actions`` is
    the dataset's next action where known (BRAC's a2), else zeros."""

    observations: Any
    actions: Any
    rewards: Any
    next_observations: Any
    terminals: Any
    next_actions: Any


def batch_from_arrays(observations, actions, rewards, next_observations, terminals, next_actions=None) -> Batch:
    """A device-resident float32 :class:`Batch` from NumPy arrays."""
    f = lambda a: jnp.asarray(np.asarray(a, np.float32))
    next_actions = np.zeros_like(actions) if next_actions is None else next_actions
    return Batch(f(observations), f(actions), f(rewards), f(next_observations), f(terminals), f(next_actions))


@partial(jax.jit, static_argnums=(0, 3, 4))
def update_many(agent, state, data: Batch, n: int, batch_size: int, sizes=None):
    """``n`` updates of ``agent`` in one compiled call; minibatches drawn uniformly with replacement from
    ``data`` inside the scan with a key split off ``state.key``. ``sizes`` (int array [n], optional) limits
    update j to the first ``sizes[j]`` rows (a replay buffer filling up: each update sees only the steps
    stored before it). Returns ``(state, info averaged over n)``."""
    size = data.observations.shape[0]

    def body(s, high):
        key, k = jax.random.split(s.key)
        idx = jax.random.randint(k, (batch_size,), 0, size if high is None else high)
        s, info = agent.update(s._replace(key=key), jax.tree.map(lambda a: a[idx], data))
        return s, info

    state, infos = jax.lax.scan(body, state, sizes, length=n)
    return state, jax.tree.map(jnp.mean, infos)


@partial(jax.jit, static_argnums=(0, 5, 6, 7))
def update_many_mixed(agent, state, real: Batch, model: Batch, model_size, n: int, batch_size: int, n_real: int):
    """``n`` updates whose minibatches take ``n_real`` rows uniformly from ``real`` and ``batch_size − n_real``
    from the first ``model_size`` rows of ``model`` (MOPO's mix of data and model rollouts), drawn in the scan
    as :func:`update_many` draws them. Returns ``(state, info averaged over n)``."""
    def body(s, _):
        key, k_real, k_model = jax.random.split(s.key, 3)
        i_real = jax.random.randint(k_real, (n_real,), 0, real.observations.shape[0])
        i_model = jax.random.randint(k_model, (batch_size - n_real,), 0, jnp.maximum(model_size, 1))
        batch = jax.tree.map(lambda r, m: jnp.concatenate([r[i_real], m[i_model]]), real, model)
        return agent.update(s._replace(key=key), batch)

    state, infos = jax.lax.scan(body, state, None, length=n)
    return state, jax.tree.map(jnp.mean, infos)


def soft_update(target, online, tau: float):
    """Polyak averaging: target ← τ·online + (1 − τ)·target."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def adam_step(opt, grads, opt_state, params):
    """One optax step: returns (new params, new optimizer state)."""
    updates, opt_state = opt.update(grads, opt_state, params)
    return jax.tree.map(lambda p, u: p + u, params, updates), opt_state


# ----------------------------------------------------------------------------- tanh-Gaussian actor
# The actor of SAC/BRAC/BEAR. For an observation s the MLP outputs (μ, l) and
#     log σ = lo + ½(hi − lo)·(tanh(l) + 1)      ∈ [lo, hi] = [−5, 0] by default
#     u = μ + σ·ε,  ε ~ N(0, I),        a = m + h·tanh(u)
# with m, h the midpoint and half-range of the action box. By the change of variables a = m + h·tanh(u),
#     log π(a|s) = log N(u; μ, σ²) − Σ_i log(h_i·(1 − tanh²(u_i)))
#     log(1 − tanh²(u)) = 2·(log 2 − u − softplus(−2u))                    (stable form)
# The deterministic ("main") policy is a = m + h·tanh(μ).

LOG2 = float(np.log(2.0))


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


def actor_init(key, spec: Spec, hidden) -> list:
    return mlp_init(key, [spec.obs_dim, *hidden, 2 * spec.act_dim])


def actor_head(actor, obs, log_std_min: float = -5.0, log_std_max: float = 0.0):
    """(μ, log σ) of the pre-squash Gaussian."""
    mu, raw = jnp.split(mlp_apply(actor, obs, "relu"), 2, axis=-1)
    return mu, log_std_from_raw(raw, log_std_min, log_std_max)


def actor_sample(actor, obs, key, spec: Spec, log_std_min: float = -5.0, log_std_max: float = 0.0,
                 noise_clip=None, n=None):
    """A reparameterised sample: returns (a, log π(a|s), u) with u the pre-squash sample. ``noise_clip``
    clips the standard-normal noise to [−c, c] (BEAR's original sampling trick). With ``n``, n samples per
    row of ``obs``, shape [n, *obs.shape[:-1], act]: the network runs once per row (the same numbers as
    sampling from ``repeat_rows(obs, n)``, n times fewer network evaluations)."""
    mu, log_std = actor_head(actor, obs, log_std_min, log_std_max)
    eps = jax.random.normal(key, mu.shape if n is None else (n, *mu.shape), mu.dtype)
    if noise_clip is not None:
        eps = jnp.clip(eps, -noise_clip, noise_clip)
    u = mu + jnp.exp(log_std) * eps
    a = spec.mid + spec.half * jnp.tanh(u)
    return a, tanh_gaussian_log_prob(u, mu, log_std, spec.half), u


def actor_mode(actor, obs, spec: Spec, log_std_min: float = -5.0, log_std_max: float = 0.0):
    """The deterministic ("main") action a = m + h·tanh(μ)."""
    mu, _ = actor_head(actor, obs, log_std_min, log_std_max)
    return spec.mid + spec.half * jnp.tanh(mu)


def actor_log_prob(actor, obs, act, spec: Spec, log_std_min: float = -5.0, log_std_max: float = 0.0,
                   clip: float = 1e-3):
    """log π(a|s) of a given action: a is moved ``clip``·h inside the box (BRAC's clipping, so atanh stays
    finite) and mapped back to u = atanh((a − m)/h). ``act`` may carry leading sample axes over ``obs``
    ([n, B, act] against [B, obs]): the network runs once per state."""
    mu, log_std = actor_head(actor, obs, log_std_min, log_std_max)
    x = jnp.clip((act - spec.mid) / spec.half, -1.0 + clip, 1.0 - clip)
    u = jnp.arctanh(x)
    return tanh_gaussian_log_prob(u, mu, log_std, spec.half)


def tanh_gaussian_export(actor, spec: Spec, hidden, log_std_min: float = -5.0, log_std_max: float = 0.0):
    """The actor as an exported ``tanh_gaussian`` policy: (policy.json fields, policy.npz arrays)."""
    arrays = {}
    for i, layer in enumerate(actor):
        arrays[f"layers/{i}/w"] = np.asarray(layer["w"], np.float32)
        arrays[f"layers/{i}/b"] = np.asarray(layer["b"], np.float32)
    fields = {"kind": "tanh_gaussian", "obs_dim": spec.obs_dim, "act_dim": spec.act_dim,
              "hidden_sizes": list(hidden), "activation": "relu", "act_low": list(spec.act_low),
              "act_high": list(spec.act_high), "log_std_min": log_std_min, "log_std_max": log_std_max,
              "obs_normalizer": None}
    return fields, arrays


# ----------------------------------------------------------------------------- Q ensembles
def q_init(key, spec: Spec, hidden, n: int) -> list:
    """``n`` Q networks on concat(s, a) as one pytree with a leading member axis."""
    sizes = [spec.obs_dim + spec.act_dim, *hidden, 1]
    return jax.vmap(lambda k: mlp_init(k, sizes))(jax.random.split(key, n))


def q_apply(q, obs, act):
    """Q_k(s, a) for every member k: shape [n, ...batch]. ``obs`` may broadcast against ``act`` ([B, obs]
    against [m, B, act]: m actions per state, the state's part of the first layer computed once)."""
    return jax.vmap(lambda p: mlp_apply_concat(p, (obs, act), "relu")[..., 0])(q)


def critic_step(opt, q, opt_state, obs, act, y):
    """One Adam step of every Q network on Σ_k mean_B (Q_k(s, a) − y)²: returns (q, opt_state, loss, Q values)."""
    def loss_fn(params):
        qs = q_apply(params, obs, act)
        return jnp.sum(jnp.mean((qs - y) ** 2, axis=-1)), qs

    (loss, qs), grads = jax.value_and_grad(loss_fn, has_aux=True)(q)
    q, opt_state = adam_step(opt, grads, opt_state, q)
    return q, opt_state, loss, qs


def soft_clipped_double_q(qs, lam: float):
    """λ·min_k Q_k + (1 − λ)·max_k Q_k over the leading member axis (BCQ/BEAR's target, λ = 0.75)."""
    return lam * jnp.min(qs, axis=0) + (1.0 - lam) * jnp.max(qs, axis=0)


# ----------------------------------------------------------------------------- conditional VAE (BCQ, BEAR)
# Encoder concat(s, a) → hidden → (μ_z, log σ_z) with log σ_z clipped to [−4, 15]; decoder concat(s, z) →
# hidden → a = m + h·tanh(·). Sampling for decoding: z ~ N(0, I) clipped to [−0.5, 0.5].
# Loss: mean (recon − a)² + ½·mean KL(N(μ_z, σ_z²) ‖ N(0, I)).

def vae_init(key, spec: Spec, hidden, latent_dim: int) -> dict:
    ke, kd = jax.random.split(key)
    return {"enc": mlp_init(ke, [spec.obs_dim + spec.act_dim, *hidden, 2 * latent_dim]),
            "dec": mlp_init(kd, [spec.obs_dim + latent_dim, *hidden, spec.act_dim])}


def vae_decode(vae, obs, z, spec: Spec):
    """(a, raw): the decoded action in the box and the decoder's pre-tanh output (``obs`` may broadcast
    against ``z``)."""
    raw = mlp_apply_concat(vae["dec"], (obs, z), "relu")
    return spec.mid + spec.half * jnp.tanh(raw), raw


def vae_sample(vae, obs, key, spec: Spec, latent_dim: int, z_clip: float = 0.5, n=None):
    """Decode with z ~ N(0, I) clipped to [−z_clip, z_clip]; returns (a, raw). With ``n``, n proposals per row
    of ``obs``: [n, *obs.shape[:-1], act] (the numbers of ``repeat_rows(obs, n)``)."""
    z_shape = obs.shape[:-1] + (latent_dim,)
    z = jnp.clip(jax.random.normal(key, z_shape if n is None else (n, *z_shape)), -z_clip, z_clip)
    return vae_decode(vae, obs, z, spec)


def vae_loss(vae, obs, act, key, spec: Spec, latent_dim: int, kl_weight: float = 0.5):
    """Reconstruction MSE + kl_weight · KL to the standard normal, both averaged (BCQ/BEAR)."""
    h = mlp_apply_concat(vae["enc"], (obs, act), "relu")
    mean, log_std = h[..., :latent_dim], jnp.clip(h[..., latent_dim:], -4.0, 15.0)
    std = jnp.exp(log_std)
    z = mean + std * jax.random.normal(key, mean.shape)
    recon, _ = vae_decode(vae, obs, z, spec)
    rec = jnp.mean((recon - act) ** 2)
    kl = -0.5 * jnp.mean(1.0 + jnp.log(std**2) - mean**2 - std**2)
    return rec + kl_weight * kl, {"vae_recon": rec, "vae_kl": kl}


def repeat_rows(x, n: int):
    """[B, ...] → [n, B, ...] (n copies along a new leading axis)."""
    return jnp.broadcast_to(x, (n,) + x.shape)


__all__ = ["Spec", "Batch", "batch_from_arrays", "update_many", "update_many_mixed", "soft_update", "adam_step", "actor_init",
           "actor_head", "actor_sample", "actor_mode", "actor_log_prob", "tanh_gaussian_export", "q_init",
           "q_apply", "critic_step", "soft_clipped_double_q", "vae_init", "vae_decode", "vae_sample", "vae_loss", "repeat_rows",
           "LOG2", "log_std_from_raw", "tanh_gaussian_log_prob"]
