"""TRPO on imaginary rollouts, as BREMEN runs it, one compiled call per iteration.

One iteration (:func:`trpo_iteration`, a single ``jax.jit``): imaginary rollout (``lax.scan`` over the model
env) → baseline values → KL penalty and GAE (reverse ``lax.scan``) → one natural-gradient step with a
backtracking line search (``lax.while_loop``\\ s) → baseline refit on this iteration's paths.

Advantages (§5.2, §5.3): with V(s') := 0 after the last step of every path (termination *and* the H limit:
no bootstrap at truncation, quirk 11; ``bootstrap_truncation`` bootstraps V(s') there instead),

    δ_t = r_t + γ V(s_{t+1}) − V(s_t) − α KL_t,     KL_t = KL(π_θ(·|s_t) ‖ π_β(·|s_t)),
    Â_t = Σ_k (γλ)^k δ_{t+k},     value targets = Â_t + V(s_t) (λ-returns that include the KL penalty),

then Â is normalized, (Â − mean)/(std + 1e-8), over all valid steps.

Step (§5.5): :func:`bremen.algos.natural_gradient.natural_gradient_step` (CG on exact Fisher products,
the δ-scaled step, the backtracking line search).

Quirk 1 (kept by default): actions are sampled with the fixed σ_g (``const_sampling``) but the ratios, the
Fisher matrix and both KLs use the network's σ(s). ``consistent_likelihood=True`` uses the sampling
distribution everywhere instead. Quirk 3 (zero-padded, truncated batch) is ``padded_batch=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from bremen.algos.natural_gradient import fisher_rows, natural_gradient_step
from bremen.algos.trpo_value import baseline_fit, baseline_init, baseline_predict
from bremen.models.model_env import ModelEnv, Rollout, padded_rows, rollout
from bremen.models.normalizer import Normalization, RunningStats, normalize
from bremen.models.policy import dist, kl, sampling_log_std


@dataclass(frozen=True)
class TRPOConfig:
    """TRPO on the model (defaults: the original's config and published run commands)."""

    gamma: float = 0.99
    """Discount γ."""
    gae_lambda: float = 0.95
    """GAE λ (the original's configs: 0.97 for ant, 0.95 for the others)."""
    target_kl: float = 0.05
    """Trust-region size δ (published runs: 0.05 or 0.1; the original CLI default was 0.01)."""
    cg_iters: int = 10
    """Conjugate-gradient iterations."""
    cg_damping: float = 0.1
    """Damping λ added to the Fisher matrix."""
    cg_residual_tol: float = 1e-10
    """CG stops early when rᵀr falls below this."""
    fisher_subsample: int = 1
    """Fisher-vector products on ⌈N/k⌉ batch rows drawn at random from the valid rows, afresh every iteration
    (1: all rows, as the original; k > 1 cuts the conjugate gradient's cost ~k×)."""
    backtrack_iters: int = 10
    """Line-search tries (fractions 1, r, r², …)."""
    backtrack_ratio: float = 0.5
    """Line-search shrink factor r."""
    accept_ratio: float = 0.1
    """Minimum actual/expected improvement to accept a fraction."""
    line_search_kl: Optional[float] = None
    """None: no KL check in the line search (original); x: also require mean KL ≤ x·target_kl."""
    iterations: int = 25
    """TRPO iterations per outer iteration (read by the model-based learner and the run driver)."""
    batch_size: int = 50_000
    """Imaginary transitions per iteration; n_envs = clip(batch_size // horizon, 1, 1000) parallel rollouts."""
    horizon: int = 1000
    """Imaginary episode limit H (published runs: 250 ant/half_cheetah/cheetah_run, 1000 hopper/walker2d)."""
    rollout_steps: Optional[int] = None
    """Length of the lock-step scan (None: H); longer scans collect more completed episodes."""
    auto_reset: bool = True
    """Restart ended rollouts inside the scan (original); False: one episode per row."""
    keep_unfinished: bool = False
    """Keep the unfinished episode at each row's end as a truncated path (the original discards it)."""
    padded_batch: bool = False
    """Quirk 3: TRPO step on the first batch_size rows of the zero-padded [paths × L] array."""
    kl_penalty: float = 0.0
    """α of the KL value penalty α·KL(π_θ‖π_β) subtracted from every TD residual (the original's ``--alpha``)."""
    sampling_std: float = 0.1
    """σ_g of the action noise (published runs: --gaussian 0.1; CLI default 1.0)."""
    const_sampling: bool = True
    """a = μ + 𝒩(0, σ_g²) (published runs); False: a = μ + σ_g·σ(s)·𝒩(0, 1)."""
    consistent_likelihood: bool = False
    """Quirk 1 off: ratios, Fisher and KLs use the sampling distribution instead of the network's σ."""
    bootstrap_truncation: bool = False
    """Bootstrap V(s') when a path ends at H without terminating (the original uses V = 0)."""
    baseline: str = "linear"
    """Value baseline: 'linear' (original) or 'mlp' (--param_value)."""
    baseline_reg: float = 1e-5
    """Ridge coefficient of the linear baseline."""
    policy_activation: str = "relu"
    """Hidden activation of the policy MLP."""
    rows_per_chunk: int = 4000
    """Rows per chunk of the fused forward-backward gradient pass (speed only: equal up to float rounding)."""
    fisher_rows_per_chunk: int = 10_000
    """Rows per chunk of the Fisher products' passes when there are more Fisher rows (speed only)."""

    @property
    def n_envs(self) -> int:
        """Parallel imaginary rollouts, int(batch_size / horizon) clamped to [1, 1000] (§3.1)."""
        return min(max(self.batch_size // self.horizon, 1), 1000)


class TRPOState(NamedTuple):
    """Everything one TRPO iteration reads and writes (the model, the BC policy and the start pool are read)."""

    policy: list
    stats: RunningStats  # the policy's (and baseline's) observation statistics, copied from BC
    behavior: list  # π_β, for the KL penalty and its logging
    behavior_stats: RunningStats
    baseline: Any
    ens_params: list
    norm: Normalization
    start_obs: jnp.ndarray  # [M, obs_dim] pool of imaginary start states
    iteration: jnp.ndarray


def trpo_init(policy, stats, behavior, behavior_stats, ens_params, norm, start_obs, key,
              config: TRPOConfig = TRPOConfig()) -> TRPOState:
    """Initial state; the baseline starts at V = 0 (linear) or a fresh MLP."""
    base = baseline_init(config.baseline, key, start_obs.shape[-1])
    return TRPOState(policy, stats, behavior, behavior_stats, base, ens_params, norm,
                     jnp.asarray(start_obs, jnp.float32), jnp.zeros((), jnp.int32))


def gae(rew, v, v_next, kl_t, term, last, *, gamma: float, lam: float, kl_penalty: float = 0.0,
        bootstrap_truncation: bool = False):
    """Advantages and value targets on a time-major ``[T, n]`` grid of consecutive steps.

    ``last[t]`` ends a path at t (the next row entry starts a new one); ``term[t]`` marks a termination.
    V(s') is ``v_next`` mid-path, 0 after a termination, and 0 (default) or ``v_next`` at other path ends.
    Returns ``(Â, Â + V)``.
    """
    boot = ~term & (~last | bootstrap_truncation)
    delta = rew + gamma * v_next * boot - v - kl_penalty * kl_t

    def back(a_next, x):
        d, end = x
        a = d + gamma * lam * jnp.where(end, 0.0, a_next)
        return a, a

    _, adv = jax.lax.scan(back, jnp.zeros_like(rew[0]), (delta, last), reverse=True)
    return adv, adv + v


def _likelihood_log_std(log_std, config: TRPOConfig):
    """log σ used for ratios and KLs, from the network's: itself (original) or the sampling σ."""
    if config.consistent_likelihood:
        return sampling_log_std(log_std, config.sampling_std, config.const_sampling)
    return log_std


def _likelihood_dist(params, stats, obs, config: TRPOConfig, env: ModelEnv):
    """(μ, log σ) used for ratios and KLs: the network's σ (original) or the sampling σ."""
    mu, log_std = dist(params, stats, obs, config.policy_activation, env.act_low, env.act_high)
    return mu, _likelihood_log_std(log_std, config)


def _masked_stats(x, mask, prefix):
    n = jnp.maximum(jnp.sum(mask), 1)
    return {
        f"{prefix}_mean": jnp.sum(jnp.where(mask, x, 0.0)) / n,
        f"{prefix}_max": jnp.max(jnp.where(mask, x, -jnp.inf)),
        f"{prefix}_min": jnp.min(jnp.where(mask, x, jnp.inf)),
    }


def behavior_kl(state: TRPOState, obs, mu, log_std, config: TRPOConfig, env: ModelEnv):
    """KL(π_θ(·|s) ‖ π_β(·|s)) from π_θ's network outputs ``(mu, log_std)`` at ``obs`` (one pass of π_β)."""
    mu_b, ls_b = _likelihood_dist(state.behavior, state.behavior_stats, obs, config, env)
    return kl(mu, _likelihood_log_std(log_std, config), mu_b, ls_b)


def advantages(state: TRPOState, roll: Rollout, kl_b, config: TRPOConfig):
    """Baseline values, GAE and value targets for a rollout grid, with the behavior KL ``kl_b`` penalized."""
    obs_n = normalize(state.stats, roll.observations)
    v = baseline_predict(config.baseline, state.baseline, obs_n, roll.t)
    v_next = baseline_predict(config.baseline, state.baseline, normalize(state.stats, roll.next_observations), roll.t + 1)
    adv, targets = gae(roll.rewards, v, v_next, kl_b, roll.terminals, roll.last, gamma=config.gamma, lam=config.gae_lambda,
                       kl_penalty=config.kl_penalty, bootstrap_truncation=config.bootstrap_truncation)
    return adv, targets, obs_n


@partial(jax.jit, static_argnames=("config", "env"))
def trpo_iteration(state: TRPOState, key, *, config: TRPOConfig, env: ModelEnv):
    """One full TRPO iteration as a single compiled call: returns ``(state, info)``.

    ``info`` (scalars): advantages_mean/max/min (before normalization), behavior_policy_kl_mean/max/min
    (over the valid steps when α > 0 or ``fisher_subsample`` is 1; otherwise, since it only feeds the log,
    over this iteration's Fisher rows, a random 1/k of the valid steps), surrogate_before/after (mean
    ratio·Â), expected_improvement, kl_after (mean KL(π_old‖π_new) on the step batch), step_fraction (0:
    rejected), imagined_return (mean return of the completed episodes), episodes, valid_steps.

    The policy's outputs on the rollout's states come from the rollout itself; the Fisher rows are drawn
    from ``fold_in(key, 1)``, the rollout from ``key``.
    """
    roll = rollout(state.policy, state.stats, state.ens_params, state.norm, state.start_obs, key, env=env,
                   n_envs=config.n_envs, horizon=config.horizon, n_steps=config.rollout_steps,
                   sampling_std=config.sampling_std, const_sampling=config.const_sampling,
                   policy_activation=config.policy_activation, auto_reset=config.auto_reset,
                   keep_unfinished=config.keep_unfinished)
    d, a = roll.observations.shape[-1], roll.actions.shape[-1]
    valid = roll.valid
    k = config.fisher_subsample
    fisher_key = jax.random.fold_in(key, 1)
    grid_rows = None if k == 1 else fisher_rows(fisher_key, valid.reshape(-1), k)  # of the flattened grid
    if config.kl_penalty > 0 or grid_rows is None:  # the penalty needs every step; with k = 1 the log takes them all
        kl_log, kl_mask = behavior_kl(state, roll.observations, roll.mu, roll.log_std, config, env), valid
    else:
        kl_log = behavior_kl(state, roll.observations.reshape(-1, d)[grid_rows], roll.mu.reshape(-1, a)[grid_rows],
                             roll.log_std.reshape(-1, a)[grid_rows], config, env)
        kl_mask = valid.reshape(-1)[grid_rows]
    kl_b = kl_log if config.kl_penalty > 0 else jnp.zeros_like(roll.rewards)
    adv, targets, obs_n = advantages(state, roll, kl_b, config)
    n_valid = jnp.maximum(jnp.sum(valid), 1)
    adv_mean = jnp.sum(jnp.where(valid, adv, 0.0)) / n_valid
    adv_std = jnp.sqrt(jnp.sum(jnp.where(valid, (adv - adv_mean) ** 2, 0.0)) / n_valid)
    adv_n = (adv - adv_mean) / (adv_std + 1e-8)

    if config.padded_batch:
        t_idx, e_idx, real, w = padded_rows(roll, config.batch_size)
        obs = jnp.where(real[:, None], roll.observations[t_idx, e_idx], 0.0)
        act = jnp.where(real[:, None], roll.actions[t_idx, e_idx], 0.0)
        adv_rows = jnp.where(real, adv_n[t_idx, e_idx], 0.0)
    else:
        obs, act = roll.observations.reshape(-1, d), roll.actions.reshape(-1, a)
        adv_rows, w = jnp.where(valid, adv_n, 0.0).reshape(-1), valid.reshape(-1).astype(jnp.float32)

    def lik(params, obs):
        return _likelihood_dist(params, state.stats, obs, config, env)

    # the Fisher rows: the grid rows drawn above, or, for the padded batch, as many of its own rows
    fisher_idx = fisher_rows(fisher_key, w, k) if config.padded_batch and k > 1 else grid_rows
    policy, step_info = natural_gradient_step(state.policy, lik, obs, act, adv_rows, w, config, fisher_idx)
    base = baseline_fit(config.baseline, state.baseline, obs_n.reshape(-1, d), roll.t.reshape(-1),
                        targets.reshape(-1), valid.reshape(-1).astype(jnp.float32), config.baseline_reg)

    episodes = jnp.sum(roll.last & valid)
    info = {
        **_masked_stats(adv, valid, "advantages"),
        **_masked_stats(kl_log, kl_mask, "behavior_policy_kl"),
        **step_info,
        "imagined_return": jnp.sum(jnp.where(valid, roll.rewards, 0.0)) / jnp.maximum(episodes, 1),
        "episodes": episodes,
        "valid_steps": jnp.sum(valid),
    }
    return state._replace(policy=policy, baseline=base, iteration=state.iteration + 1), info


@partial(jax.jit, static_argnames=("config", "env", "n_iters"))
def trpo_run(state: TRPOState, key, *, config: TRPOConfig, env: ModelEnv, n_iters: int):
    """``n_iters`` iterations in one ``lax.scan``; ``info`` values gain a leading ``[n_iters]`` axis."""

    def one(s, k):
        return trpo_iteration(s, k, config=config, env=env)

    return jax.lax.scan(one, state, jax.random.split(key, n_iters))
