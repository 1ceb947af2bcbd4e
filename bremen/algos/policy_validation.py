"""Policy validation on the ensemble: ME-TRPO's model-side stopping rule (Kurutach et al., 2018, §4.3).

TRPO on a learned model keeps raising the imagined return after the real one has peaked: the policy finds
where the model is wrong. ME-TRPO watches each ensemble member separately: the policy's return is estimated
under every member k on its own, η̂_k(θ), and training goes on while the share of members under which the
policy improved,

    ratio = (1/K) Σ_k 1[η̂_k(θ) > η̂_k(θ_ref)],

stays at or above a threshold (the paper: 70 %). Improvement seen by the whole ensemble is likely real;
improvement seen by a few members is likely one member's error.

Here (``--policy_validation RATIO``, ``--validation_patience N``), checked after every outer iteration:
θ_ref is the last policy that passed (at the start of a deployment: the initial policy, BC's for BREMEN);
a check below the threshold is a miss, a pass resets the count and makes the current policy θ_ref; after
N misses in a row the deployment's TRPO stops and the policy goes back to θ_ref. ME-TRPO compares with the
policy of the previous check and keeps the last one; the revert is this package's choice (the deployment
study found real returns leaving their peak within a deployment, docs/recursive.md).

Each η̂_k is the mean undiscounted return of ``n_envs`` episodes of up to H steps (the first episode of
each row, truncated at H) from start states of the pool, with the policy's sampling noise, the same random
numbers for every member and every check of a deployment (common random numbers: the comparison sees the
policy's change, not the noise).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bremen.models.model_env import ModelEnv, rollout


class ValidationState(NamedTuple):
    """What the rule carries between checks (checkpointed with the optimizer)."""

    ref_returns: jnp.ndarray  # [K] η̂_k of the reference policy θ_ref
    ref_policy: list  # θ_ref's network
    ref_stats: object  # θ_ref's observation statistics
    misses: jnp.ndarray  # checks below the threshold in a row
    stopped: jnp.ndarray  # bool: this deployment's TRPO has stopped
    key: jnp.ndarray  # the fixed random numbers of this deployment's checks
    skipped: jnp.ndarray  # TRPO iterations not run after stops, over the whole run (for the logs' counts)


@partial(jax.jit, static_argnames=("env", "n_envs", "horizon", "sampling_std", "const_sampling",
                                   "policy_activation"))
def member_returns(policy, stats, ens_params, norm, start_obs, key, *, env: ModelEnv, n_envs: int, horizon: int,
                   sampling_std: float, const_sampling: bool, policy_activation: str = "relu") -> jnp.ndarray:
    """``[K]``: the policy's mean return under each ensemble member alone (η̂_k above)."""

    def one(member_params):
        alone = jax.tree.map(lambda p: p[None], member_params)  # an ensemble of one: every step is member k's
        roll = rollout(policy, stats, alone, norm, start_obs, key, env=env, n_envs=n_envs, horizon=horizon,
                       sampling_std=sampling_std, const_sampling=const_sampling, policy_activation=policy_activation,
                       auto_reset=False, keep_unfinished=True)
        return jnp.sum(jnp.where(roll.valid, roll.rewards, 0.0)) / n_envs

    return jax.lax.map(one, ens_params)


def check(state: ValidationState, returns, policy, stats, threshold: float, patience: int):
    """One check of the current policy (``returns``: its :func:`member_returns`). Returns ``(state, ratio,
    stop)``; when ``stop``, the caller puts ``state.ref_policy``/``ref_stats`` back."""
    ratio = float(jnp.mean(returns > state.ref_returns))
    if ratio >= threshold:
        return state._replace(ref_returns=returns, ref_policy=policy, ref_stats=stats,
                              misses=jnp.zeros((), jnp.int32)), ratio, False
    misses = int(state.misses) + 1
    stop = misses >= patience
    return state._replace(misses=jnp.asarray(misses, jnp.int32), stopped=jnp.asarray(stop)), ratio, stop
