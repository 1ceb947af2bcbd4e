"""The dynamics ensemble: deterministic members (BREMEN's, below) or Gaussian ones (``probabilistic``, MOPO's:
bremen.models.probabilistic, trained on the Gaussian NLL; the normalized MSE of their means is what validation
and early stopping see, and ``elites`` of them are kept for rollouts).

K MLPs ``[ŝ, â] → hidden → hidden → obs_dim`` (ReLU, Glorot-uniform kernels, zero biases) with their
params stacked on a leading member axis and trained together under ``jax.vmap``. Each member predicts the
normalized delta; the next state is

    ŝ' = s + f_k(ŝ, â) · σ_Δ + μ_Δ,       ŝ = (s − μ_s)/(σ_s + 1e-10),  â = (a − μ_a)/(σ_a + 1e-10).

Loss of member k on a minibatch (§4.1.2):

    L_k = mean_{batch, dims} (f_k − (s' − s − μ_Δ)/(σ_Δ + 1e-10))²  +  (1/N_train) · Σ_hidden ½‖W‖²

where the L2 sum runs over the hidden-layer kernels only (output layer and biases excluded) and the
original's coefficient is 1/N_train times reg_coeff = 1 (its config's reg_coeff was never passed on).

Training (§4.1.4): Adam 1e-3, minibatch 1000 with the last partial batch dropped, every member its own
shuffle of the *same* data (no bootstrap), validation on the whole validation set after epochs 0, 5, 10, …
(plain normalized MSE), and per member early stopping when ``epoch − best_epoch ≥ 20`` at a check. The final
weights are the last epoch's (the best are not restored: option ``restore_best``). The Adam state lives in
:class:`EnsembleState` and persists across fits (warm start, as the original) unless ``reset_optimizer``.

Optional learned reward (tasks without a known reward): one extra output unit predicting the normalized
reward ``(r − μ_r)/(σ_r + 1e-10)``, trained jointly as one more target dimension of the MSE.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bremen.models import probabilistic as prob
from bremen.models.nets import mlp_apply, mlp_init
from bremen.models.waiting import wait
from bremen.models.normalizer import DIV_EPS, Normalization, normalize_inputs


@dataclass(frozen=True)
class DynamicsConfig:
    """Dynamics-ensemble hyperparameters (defaults: the original's `dynamics` config)."""

    ensemble_size: int = 5
    """Number of members K."""
    n_layers: int = 2
    """Hidden layers per member."""
    hidden: int = 1024
    """Units per hidden layer."""
    activation: str = "relu"
    """Hidden activation (relu, tanh, swish, selu)."""
    batch_size: int = 1000
    """Minibatch size; the last partial minibatch of an epoch is dropped."""
    lr: float = 1e-3
    """Adam learning rate (β1 0.9, β2 0.999, ε 1e-8)."""
    epochs: int = 200
    """Maximum epochs per fit."""
    val_every: int = 5
    """Validate after epochs 0, val_every, 2·val_every, …"""
    patience: int = 20
    """Stop a member when (epoch − best_epoch) ≥ patience at a validation check."""
    reg_coeff: float = 1.0
    """L2 weight on the hidden kernels, times 1/N_train (the original's effective value is 1.0)."""
    restore_best: bool = False
    """Return each member's best-validation weights (the original keeps the last epoch's)."""
    reset_optimizer: bool = False
    """Start every fit with fresh Adam moments (the original's persist across fits)."""
    learn_reward: bool = False
    """Add a reward output unit (for tasks whose reward is not known in closed form)."""
    probabilistic: bool = False
    """Gaussian members trained on the NLL (MOPO; bremen.models.probabilistic); False: BREMEN's deterministic
    members trained on the MSE."""
    elites: int = 0
    """Members a rollout samples from, those with the lowest validation MSE (MOPO: 5 of 7); 0: all."""
    weight_decays: tuple = ()
    """Per-layer decay wd·½‖W‖² on every kernel, output layer included (MOPO: 2.5e-5, 5e-5, 7.5e-5, 7.5e-5,
    1e-4); empty: the hidden kernels' L2 with ``reg_coeff``/N_train."""


class EnsembleState(NamedTuple):
    """Stacked member params ``[K, ...]`` and their Adam state."""

    params: list
    opt_state: optax.OptState


class FitReport(NamedTuple):
    """What a fit did, per member (numpy, for logging)."""

    epochs: np.ndarray  # [K] epochs trained
    train_loss: list  # per epoch: [K] mean minibatch MSE (no L2)
    val_checks: list  # per check: (epoch, [K] validation MSE)
    best_val: np.ndarray  # [K]


def ensemble_init(key, obs_dim: int, act_dim: int, config: DynamicsConfig = DynamicsConfig()) -> EnsembleState:
    """K independently initialized members (Glorot-uniform, as TF1 ``tf.layers.dense``)."""
    out = obs_dim + int(config.learn_reward)
    if config.weight_decays and len(config.weight_decays) != config.n_layers + 1:
        raise ValueError(f"weight_decays has {len(config.weight_decays)} values; the members have "
                         f"{config.n_layers + 1} layers")
    sizes = (obs_dim + act_dim,) + (config.hidden,) * config.n_layers + (out,)
    params = _init_members(key, sizes, config.ensemble_size, config.probabilistic)
    return EnsembleState(params, optax.adam(config.lr).init(params))


@partial(jax.jit, static_argnums=(1, 2, 3))
def _init_members(key, sizes, n_members, probabilistic: bool = False):
    init = (lambda k: prob.init_member(k, sizes)) if probabilistic else (lambda k: mlp_init(k, sizes, "glorot"))
    return jax.vmap(init)(jax.random.split(key, n_members))


def member_output(member, x, activation: str = "relu"):
    """One member's normalized prediction on normalized inputs (a Gaussian member's mean)."""
    if prob.is_probabilistic(member):
        return prob.mean_logvar(member, x, activation)[0]
    return mlp_apply(member, x, activation)


def elites_of(val_mse, n: int) -> np.ndarray:
    """Indices of the ``n`` members with the lowest validation MSE, best first (``n`` = 0: all, in order)."""
    val_mse = np.asarray(val_mse)
    return np.arange(len(val_mse)) if n <= 0 else np.argsort(val_mse, kind="stable")[:n]


def _member(params, k):
    return jax.tree.map(lambda p: p[k], params)


def apply_all(params, x, activation: str = "relu"):
    """Normalized outputs of every member on normalized inputs ``x``: ``[K, ..., out]``."""
    return jax.vmap(lambda p: member_output(p, x, activation))(params)


def denormalize(norm: Normalization, obs, out):
    """``(ŝ', r̂)`` from normalized outputs ``out``; ``r̂`` is None without a reward unit."""
    d = obs.shape[-1]
    next_obs = obs + out[..., :d] * norm.delta_std + norm.delta_mean
    reward = out[..., d] * norm.rew_std + norm.rew_mean if out.shape[-1] > d else None
    return next_obs, reward


def predict(params, norm: Normalization, obs, act, member_idx, activation: str = "relu"):
    """ŝ' = s + f_k(ŝ, â)·σ_Δ + μ_Δ with member ``member_idx`` (a traced int is fine)."""
    out = member_output(_member(params, member_idx), normalize_inputs(norm, obs, act), activation)
    return denormalize(norm, obs, out)[0]


def predict_reward(params, norm: Normalization, obs, act, member_idx, activation: str = "relu"):
    """``(ŝ', r̂)`` from a reward-head ensemble (``learn_reward=True``)."""
    out = member_output(_member(params, member_idx), normalize_inputs(norm, obs, act), activation)
    if out.shape[-1] <= obs.shape[-1]:
        raise ValueError("this ensemble has no reward head (DynamicsConfig.learn_reward=False)")
    return denormalize(norm, obs, out)


def targets(norm: Normalization, obs, next_obs, rew=None):
    """Normalized training targets ``(s' − s − μ_Δ)/(σ_Δ + 1e-10)`` (++ normalized reward)."""
    y = (next_obs - obs - norm.delta_mean) / (norm.delta_std + DIV_EPS)
    if rew is None:
        return y
    return jnp.concatenate([y, ((rew - norm.rew_mean) / (norm.rew_std + DIV_EPS))[..., None]], -1)


def l2_hidden(params):
    """Σ ½‖W‖² over the hidden-layer kernels of one member (output layer and biases excluded)."""
    return sum(0.5 * jnp.sum(layer["w"] ** 2) for layer in params[:-1])


def _select(mask, new, old):
    """Per member: ``new`` where ``mask[k]`` else ``old`` (leaves without a member axis take ``new``)."""
    m = jnp.asarray(mask)
    return jax.tree.map(
        lambda a, b: jnp.where(m.reshape((-1,) + (1,) * (a.ndim - 1)), a, b) if a.ndim else a, new, old)


def member_loss(member, x, y, activation, l2_coef, weight_decays: tuple = ()):
    """(training loss, MSE) of one member on a minibatch: the MSE (deterministic) or the Gaussian NLL, plus the
    weight penalty (``weight_decays`` per layer, else ``l2_coef`` on the hidden kernels)."""
    if prob.is_probabilistic(member):
        loss, mse = prob.nll_loss(member, x, y, activation)
        layers = member["mlp"]
    else:
        loss = mse = jnp.mean((mlp_apply(member, x, activation) - y) ** 2)
        layers = member
    if weight_decays:
        return loss + sum(wd * 0.5 * jnp.sum(layer["w"] ** 2) for wd, layer in zip(weight_decays, layers)), mse
    return loss + l2_coef * l2_hidden(layers), mse


@partial(jax.jit, static_argnames=("max_epochs", "batch_size", "activation", "weight_decays"))
def train_epochs(state: EnsembleState, active, x, y, orders, lr, l2_coef, n_epochs, max_epochs: int, batch_size: int,
                 activation: str = "relu", weight_decays: tuple = ()):
    """``n_epochs ≤ max_epochs`` epochs for all members in one compiled call (``n_epochs`` may be traced).

    ``orders[e, k]`` is member k's order of the ``N`` rows in epoch e (:func:`epoch_orders`). Every epoch
    gathers its minibatches once and runs ``N // batch_size`` vmapped Adam steps (``lax.scan``). Members with
    ``active[k] = False`` end the call with their params and Adam moments unchanged (they are trained with the
    others and restored at the end: the loss is a sum over members, so no member's gradient depends on
    another's). Returns ``(state, train_mse [max_epochs, K])``, rows past ``n_epochs`` zero.
    """
    n_members = active.shape[0]
    n_batches = x.shape[0] // batch_size
    opt = optax.adam(lr)

    def loss_fn(params, xb, yb):
        loss, mse = jax.vmap(member_loss, (0, 0, 0, None, None, None))(params, xb, yb, activation, l2_coef,
                                                                         weight_decays)
        return jnp.sum(loss), mse

    def step(carry, xy):
        params, opt_state = carry
        grads, mse = jax.grad(loss_fn, has_aux=True)(params, *xy)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), mse

    def epoch(carry, perm):
        idx = perm[:, : n_batches * batch_size].reshape(n_members, n_batches, batch_size).transpose(1, 0, 2)
        carry, mse = jax.lax.scan(step, carry, (x[idx], y[idx]))
        return carry, jnp.mean(mse, axis=0)

    def maybe_epoch(carry, ip):
        i, perm = ip
        return jax.lax.cond(i < n_epochs, epoch, lambda c, _: (c, jnp.zeros(n_members)), carry, perm)

    (params, opt_state), mse = jax.lax.scan(maybe_epoch, (state.params, state.opt_state),
                                            (jnp.arange(max_epochs), orders))
    return EnsembleState(_select(active, params, state.params), _select(active, opt_state, state.opt_state)), mse


def epoch_orders(key, n_epochs: int, max_epochs: int, n_members: int, n_rows: int) -> np.ndarray:
    """Independent uniform permutations of ``n_rows`` rows per member and epoch, int32 ``[max_epochs, K, N]``
    (epochs past ``n_epochs`` are zeros, never used), drawn on the host by a generator seeded from ``key``.
    A sort-based shuffle on an XLA CPU device took 14 % of a ``cpu``-size fit (bench/fit_cpu_size.py)."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
                                           else key, np.uint32).tolist())
    out = np.zeros((max_epochs, n_members, n_rows), np.int32)
    for e in range(n_epochs):
        for k in range(n_members):
            out[e, k] = rng.permutation(n_rows)
    return out


@partial(jax.jit, static_argnames=("batch_size", "activation"))
def validation_mse(params, x, y, batch_size: int = 1000, activation: str = "relu"):
    """Per-member normalized MSE over *all* rows of ``(x, y)``, evaluated in chunks: ``[K]``."""
    n = x.shape[0]
    pad = (-n) % batch_size
    xs = jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, batch_size, x.shape[-1])
    ys = jnp.pad(y, ((0, pad), (0, 0))).reshape(-1, batch_size, y.shape[-1])
    mask = (jnp.arange(n + pad) < n).reshape(-1, batch_size, 1)

    def chunk(total, xym):
        xb, yb, mb = xym
        err = apply_all(params, xb, activation) - yb
        return total + jnp.sum(err**2 * mb, axis=(1, 2)), None

    total, _ = jax.lax.scan(chunk, jnp.zeros(jax.tree.leaves(params)[0].shape[0]), (xs, ys, mask))
    return total / (n * y.shape[-1])


def members_mse(params, norm: Normalization, data: Sequence, config: DynamicsConfig) -> np.ndarray:
    """Each member's normalized MSE on ``data = (obs, act, next_obs[, rew])`` (as validation measures it): ``[K]``."""
    obs = jnp.asarray(data[0])
    x = normalize_inputs(norm, obs, jnp.asarray(data[1]))
    y = targets(norm, obs, jnp.asarray(data[2]), _rew(data, config))
    return np.asarray(validation_mse(params, x, y, config.batch_size, config.activation))


def early_stop_check(best, best_epoch, val, epoch: int, patience: int):
    """One validation check of the original rule, per member.

    Returns ``(best, best_epoch, improved, stop)``: improved = val < best; stop = epoch − best_epoch ≥ patience
    (after updating best_epoch).
    """
    improved = val < best
    best = np.where(improved, val, best)
    best_epoch = np.where(improved, epoch, best_epoch)
    return best, best_epoch, improved, (epoch - best_epoch) >= patience


def fit(
    state: EnsembleState,
    norm: Normalization,
    train: Sequence,
    val: Optional[Sequence],
    key,
    config: DynamicsConfig = DynamicsConfig(),
    callback: Optional[Callable[[int, np.ndarray, Optional[np.ndarray]], None]] = None,
):
    """Fit the ensemble on ``train = (obs, act, next_obs[, rew])``, validating on ``val`` (same layout).

    One compiled call trains up to the next validation check (epoch 0, then ``val_every`` epochs at a
    time). ``callback(epoch, train_mse[K], val_mse[K] or None)`` runs after each call. Without ``val``
    every member trains all ``epochs``. Returns ``(state, FitReport)``.
    """
    if config.reset_optimizer:
        state = EnsembleState(state.params, optax.adam(config.lr).init(state.params))
    x = normalize_inputs(norm, jnp.asarray(train[0]), jnp.asarray(train[1]))
    y = targets(norm, jnp.asarray(train[0]), jnp.asarray(train[2]), _rew(train, config))
    if val is not None:
        xv = normalize_inputs(norm, jnp.asarray(val[0]), jnp.asarray(val[1]))
        yv = targets(norm, jnp.asarray(val[0]), jnp.asarray(val[2]), _rew(val, config))
    n_members = config.ensemble_size
    if x.shape[0] < config.batch_size:
        raise ValueError(f"{x.shape[0]} training transitions, fewer than one minibatch of {config.batch_size}")
    l2_coef = config.reg_coeff / x.shape[0]
    active = np.ones(n_members, bool)
    epochs = np.zeros(n_members, int)
    best, best_epoch = np.full(n_members, np.inf), np.zeros(n_members, int)
    best_params = state.params
    train_hist, val_hist = [], []
    epoch = 0  # next epoch to train
    while epoch < config.epochs and active.any():
        check = 0 if epoch == 0 else min(epoch + config.val_every - 1, config.epochs - 1)
        n = check - epoch + 1
        key, k = jax.random.split(key)
        max_epochs = max(config.val_every, 1)
        orders = epoch_orders(k, n, max_epochs, n_members, x.shape[0])
        state, mse = train_epochs(state, jnp.asarray(active), x, y, orders, config.lr, l2_coef, n, max_epochs,
                                  config.batch_size, config.activation, tuple(config.weight_decays))
        mse = np.where(active, np.asarray(wait(mse))[:n], np.nan)  # a stopped member's rows: nan
        train_hist.extend(list(mse))
        epochs += n * active
        epoch = check + 1
        v = None
        if val is not None and check % config.val_every == 0:
            v = np.asarray(validation_mse(state.params, xv, yv, config.batch_size, config.activation))
            val_hist.append((check, v))
            best, best_epoch, improved, stop = early_stop_check(
                best, best_epoch, np.where(active, v, np.inf), check, config.patience)
            if config.restore_best:
                best_params = _select(improved, state.params, best_params)
            active &= ~stop
        if callback is not None:
            callback(check, mse[-1], v)
    if config.restore_best and val is not None:
        state = EnsembleState(best_params, state.opt_state)
    return state, FitReport(epochs, train_hist, val_hist, best)


def _rew(data, config):
    if not config.learn_reward:
        return None
    if len(data) < 4:
        raise ValueError("learn_reward=True needs (obs, act, next_obs, rew) data")
    return jnp.asarray(data[3])

