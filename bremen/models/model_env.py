"""The learned-model environment and imaginary rollouts.

:class:`ModelEnv` holds what the model cannot learn or should not: the task's reward and termination
functions (known in closed form for built-in tasks, quirk 5), the action bounds and the member-choice rule.
Its :meth:`~ModelEnv.step` is pure and works inside ``lax.scan``:

    a_c = clip(a, low, high);  s' = clip(ŝ'_k(s, a_c), ±1e5);  r = reward_fn(s, a_c, s');  done = termination_fn(s')

with member ``k`` drawn uniformly **once per step for the whole batch** (the original, quirk 4;
``member_mode="batch"``) or independently for every rollout at every step (``member_mode="rollout"``).

With ``halt_threshold`` it is MOReL's pessimistic MDP (Kidambi et al., 2020): a step whose members disagree,
``disagreement(s, a) = max_{i,j} ‖f_i(ŝ, â) − f_j(ŝ, â)‖₂`` over the normalized state-delta predictions, by more
than the threshold halts the episode (a termination: no bootstrap after it) and its reward is lowered by
``halt_penalty`` (κ).

With ``disagreement_penalty`` λ > 0 every step's reward is lowered by λ·disagreement(s, a), the same measure:
MOPO's uncertainty-penalized reward (Yu et al., 2020) on a deterministic ensemble, a penalty that grows where
the policy leaves the data instead of a halt.

:func:`rollout` is one ``lax.scan`` of ``n_steps`` lock-step steps over ``n_envs`` rows. How it relates to the
original's batch assembly (§3.1, §3.4): the original runs n_envs = batch/H model envs in lock-step, restarts
every ended rollout from a new start state, stops once the *completed* rollouts hold ≥ batch transitions,
and discards the unfinished ones. Here every row also restarts right after an episode ends
(``auto_reset``), but the scan has a fixed length, so the batch is the ``n_steps × n_envs`` grid with a
``valid`` mask: steps of episodes that ended (termination or the H-step limit) before the scan's end are
valid, the unfinished tail of each row is masked out (or kept as a truncated episode with
``keep_unfinished``). Without terminations and with n_steps = H this is exactly the original's batch
(n_envs complete H-step paths). With terminations the original keeps sampling until it has enough
completed steps; here the count of valid steps varies and is at most n_steps·n_envs. ``auto_reset=False``
gives one episode per row, the rest of the row masked after it ends.

The original's zero-padded, truncated TRPO batch (quirk 3) is reproduced by :func:`padded_rows`: completed
paths in completion order, zero-padded to the longest length L, flattened row-major and cut to the first
``batch_size`` rows, all in fixed shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from bremen.models.dynamics import apply_all, denormalize, member_output
from bremen.models.normalizer import normalize_inputs
from bremen.models.policy import dist, sampling_log_std


def static_bound(bound) -> Union[float, tuple]:
    """An action bound as a hashable static value: one float when every dimension shares it, else a tuple."""
    b = np.asarray(bound, np.float64).reshape(-1)
    return float(b[0]) if np.all(b == b[0]) else tuple(float(x) for x in b)


@dataclass(frozen=True)
class ModelEnv:
    """Static description of the imaginary environment (hashable: a ``jax.jit`` static argument).

    ``reward_fn(obs, act_clipped, next_obs)`` and ``termination_fn(next_obs)`` are batched JAX functions;
    ``reward_fn=None`` uses the ensemble's learned reward head, ``termination_fn=None`` never terminates.
    """

    reward_fn: Optional[Callable] = None
    """r(s, a_clipped, s'); None: the ensemble's reward head."""
    termination_fn: Optional[Callable] = None
    """done(s'); None: never terminates."""
    act_low: Union[float, tuple] = -1.0
    """Lower action bound, one float or one per dimension (actions are clipped before the model and reward)."""
    act_high: Union[float, tuple] = 1.0
    """Upper action bound."""
    obs_clip: float = 1e5
    """Predicted states are clipped to ±obs_clip (the original's ±1e5)."""
    member_mode: str = "batch"
    """'batch': one random member per step for all rollouts (original); 'rollout': one per rollout and step."""
    activation: str = "relu"
    """Hidden activation of the dynamics members (DynamicsConfig.activation)."""
    halt_threshold: Optional[float] = None
    """MOReL: halt where the members' disagreement exceeds this (None: never)."""
    halt_penalty: float = 0.0
    """MOReL's κ: subtracted from the reward of a halting step."""
    disagreement_penalty: float = 0.0
    """λ: every step's reward loses λ·disagreement(s, a) (0: none)."""

    @classmethod
    def from_task(cls, task, **kwargs) -> "ModelEnv":
        """The model env of a :class:`bremen.tasks.base.Task` (its reward, termination and action bounds)."""
        return cls(task.reward_fn, task.termination_fn, static_bound(task.act_low), static_bound(task.act_high),
                   **kwargs)

    def reset(self, key, start_obs, n: int):
        """``n`` start states drawn uniformly (with replacement) from the pool ``start_obs [M, d]``."""
        return start_obs[jax.random.randint(key, (n,), 0, start_obs.shape[0])]

    def step(self, ens_params, norm, obs, act, key):
        """One imaginary step for a batch ``obs [n, d]``: returns ``(next_obs, reward, terminated)``."""
        return self.step_members(ens_params, norm, obs, act, self.draw_members(key, ens_params, obs.shape[0]))

    def draw_members(self, key, ens_params, n: int):
        """The member(s) of one step: one index (``batch``) or one per row (``rollout``)."""
        n_members = jax.tree.leaves(ens_params)[0].shape[0]
        if self.member_mode == "batch":
            return jax.random.randint(key, (), 0, n_members)
        if self.member_mode == "rollout":
            return jax.random.randint(key, (n,), 0, n_members)
        raise ValueError(f"member_mode must be 'batch' or 'rollout', not {self.member_mode!r}")

    def step_members(self, ens_params, norm, obs, act, members):
        """:meth:`step` with the members already drawn (:meth:`draw_members`)."""
        act = jnp.clip(act, jnp.asarray(self.act_low, jnp.float32), jnp.asarray(self.act_high, jnp.float32))
        x = normalize_inputs(norm, obs, act)
        n_members = jax.tree.leaves(ens_params)[0].shape[0]
        halted = disagreement = None
        if self.halt_threshold is not None or self.disagreement_penalty:  # every member's prediction is needed
            every = apply_all(ens_params, x, self.activation)
            disagreement = member_disagreement(every, obs.shape[-1])
            if self.halt_threshold is not None:
                halted = disagreement > self.halt_threshold
            out = every[members] if self.member_mode == "batch" else every[members, jnp.arange(obs.shape[0])]
        elif self.member_mode == "batch":
            # lax.switch over static member slices: inside a scan the slices are loop-invariant, so no
            # per-step copy of the chosen member's weights (as indexing with a traced k would make)
            branches = [partial(self._apply_member, i) for i in range(n_members)]
            out = jax.lax.switch(members, branches, ens_params, x)
        elif self.member_mode == "rollout":
            out = apply_all(ens_params, x, self.activation)[members, jnp.arange(obs.shape[0])]
        else:
            raise ValueError(f"member_mode must be 'batch' or 'rollout', not {self.member_mode!r}")
        next_obs, rew = denormalize(norm, obs, out)
        next_obs = jnp.clip(next_obs, -self.obs_clip, self.obs_clip)
        if self.reward_fn is not None:
            rew = self.reward_fn(obs, act, next_obs)
        elif rew is None:
            raise ValueError("reward_fn=None needs an ensemble with a reward head (DynamicsConfig.learn_reward)")
        term = (
            jnp.zeros(obs.shape[:1], bool) if self.termination_fn is None
            else jnp.asarray(self.termination_fn(next_obs), bool)
        )
        if self.disagreement_penalty:
            rew = rew - self.disagreement_penalty * disagreement
        if halted is not None:
            rew, term = jnp.where(halted, rew - self.halt_penalty, rew), term | halted
        return next_obs, rew, term

    def _apply_member(self, i, ens_params, x):
        return member_output(jax.tree.map(lambda p: p[i], ens_params), x, self.activation)


def member_disagreement(outputs, obs_dim: int):
    """max_{i,j} ‖f_i − f_j‖₂ over the members' normalized outputs ``[K, n, out]`` (state-delta part): ``[n]``."""
    f = outputs[..., :obs_dim]
    dist = jnp.sqrt(jnp.sum((f[:, None] - f[None, :]) ** 2, axis=-1))
    return jnp.max(dist, axis=(0, 1))


@partial(jax.jit, static_argnames=("activation", "chunk"))
def disagreement_on(ens_params, norm, obs, act, activation: str = "relu", chunk: int = 4096):
    """``(mean, max)`` of :func:`member_disagreement` over the rows of ``(obs, act)``, ``chunk`` rows at a time
    (MOReL's threshold is the max over the data divided by its pessimism coefficient)."""
    n = obs.shape[0]
    pad = (-n) % chunk
    xs = jnp.pad(normalize_inputs(norm, obs, act), ((0, pad), (0, 0))).reshape(-1, chunk, obs.shape[-1] + act.shape[-1])
    mask = (jnp.arange(n + pad) < n).reshape(-1, chunk)

    def body(acc, xm):
        x, m = xm
        d = jnp.where(m, member_disagreement(apply_all(ens_params, x, activation), obs.shape[-1]), 0.0)
        return (acc[0] + jnp.sum(d), jnp.maximum(acc[1], jnp.max(d))), None

    (total, top), _ = jax.lax.scan(body, (jnp.asarray(0.0), jnp.asarray(0.0)), (xs, mask))
    return total / n, top


class Rollout(NamedTuple):
    """A time-major ``[n_steps, n_envs, ...]`` batch of imaginary transitions (the transition fields named as
    :class:`bremen.data.Dataset`'s)."""

    observations: jnp.ndarray
    actions: jnp.ndarray  # the policy's sample, before clipping (what its likelihood is taken of)
    next_observations: jnp.ndarray
    rewards: jnp.ndarray
    terminals: jnp.ndarray  # termination_fn fired on next_observations, or MOReL's halt
    timeouts: jnp.ndarray  # the episode reached H steps without terminating
    last: jnp.ndarray  # the episode ends here: term, trunc, or the scan's last step
    t: jnp.ndarray  # step index within the episode
    valid: jnp.ndarray  # the step belongs to the batch (see module docstring)
    mu: jnp.ndarray  # the policy's mean μ(s) at obs, as the action was drawn (TRPO's old distribution)
    log_std: jnp.ndarray  # the policy network's log σ(s) at obs


@partial(
    jax.jit,
    static_argnames=("env", "n_envs", "horizon", "n_steps", "sampling_std", "const_sampling", "deterministic",
                     "policy_activation", "auto_reset", "keep_unfinished"),
)
def rollout(
    policy_params,
    stats,
    ens_params,
    norm,
    start_obs,
    key,
    *,
    env: ModelEnv,
    n_envs: int,
    horizon: int,
    n_steps: Optional[int] = None,
    sampling_std: float = 0.1,
    const_sampling: bool = True,
    deterministic: bool = False,
    policy_activation: str = "relu",
    auto_reset: bool = True,
    keep_unfinished: bool = False,
) -> Rollout:
    """``n_steps`` (default ``horizon``) lock-step imaginary steps of ``n_envs`` rows, one ``lax.scan``.

    Actions are the policy's μ(s) (``deterministic``) or μ(s) + σ·𝒩(0, 1) with the sampling σ of
    :func:`bremen.models.policy.sampling_log_std` (``sampling_std``, ``const_sampling``); the rollout keeps the
    network's outputs. Episodes start from states drawn from the pool ``start_obs [M, obs_dim]`` (the
    caller fills it from the real env's reset distribution, as the original, or from the dataset). The
    random numbers of all steps are drawn before the scan, in one vectorized call (the same numbers as one
    draw per step from the same keys).
    """
    n_steps = horizon if n_steps is None else n_steps
    k_start, k_scan = jax.random.split(key)
    act_dim = jax.tree.leaves(policy_params)[-1].shape[-1] // 2

    def draws(k):  # every random number of one step, drawn up front for all steps in one vectorized call
        k_act, k_model, k_reset = jax.random.split(k, 3)
        return (jax.random.normal(k_act, (n_envs, act_dim), jnp.float32), env.draw_members(k_model, ens_params, n_envs),
                jax.random.randint(k_reset, (n_envs,), 0, start_obs.shape[0]))

    def body(carry, x):
        obs, t = carry
        noise, members, reset_idx = x
        mu, log_std = dist(policy_params, stats, obs, policy_activation, env.act_low, env.act_high)
        act = mu if deterministic else mu + jnp.exp(sampling_log_std(log_std, sampling_std, const_sampling)) * noise
        next_obs, rew, term = env.step_members(ens_params, norm, obs, act, members)
        trunc = ~term & (t + 1 >= horizon)
        ended = term | trunc
        new_obs = jnp.where(ended[:, None], start_obs[reset_idx], next_obs)
        return (new_obs, jnp.where(ended, 0, t + 1)), (obs, act, next_obs, rew, term, trunc, t, mu, log_std)

    init = (env.reset(k_start, start_obs, n_envs), jnp.zeros((n_envs,), jnp.int32))
    xs = jax.vmap(draws)(jax.random.split(k_scan, n_steps))
    _, (obs, act, next_obs, rew, term, trunc, t, mu, log_std) = jax.lax.scan(body, init, xs)
    ended = term | trunc
    # completed[t]: an episode end at or after t in the row, i.e. the episode holding step t completed.
    completed = jnp.flip(jnp.cumsum(jnp.flip(ended, 0), 0), 0) > 0
    valid = completed | keep_unfinished
    if not auto_reset:
        valid &= (jnp.cumsum(ended, 0) - ended) == 0  # first episode of each row only
    last = ended | (jnp.arange(n_steps) == n_steps - 1)[:, None]
    return Rollout(obs, act, next_obs, rew, term, trunc, last, t, valid, mu, log_std)


def padded_rows(roll: Rollout, batch_size: int):
    """Row indices of the original's TRPO batch (quirk 3), in fixed shapes.

    Completed paths (valid, ended by termination or the H limit) are ordered by completion (step, then
    row, as the lock-step sampler appended them), zero-padded to the longest completed length L, stacked
    into [paths × L], flattened row-major and cut to the first ``batch_size`` rows. Returns
    ``(t_idx, env_idx, real, weight)`` of shape ``[batch_size]``: where to gather each row from the rollout
    grid, whether it is a real step (else a zero padding row), and whether it exists in the original's
    array at all (rows beyond ``paths × L``, when the scan completed fewer than ``batch_size`` rows' worth of
    paths, get weight 0; padding rows inside it get weight 1 and enter every mean, as in the original).
    """
    n_steps, n_envs = roll.t.shape
    ends = ((roll.terminals | roll.timeouts) & roll.valid).reshape(-1)
    (order,) = jnp.nonzero(ends, size=ends.shape[0], fill_value=0)  # completion order: flat index = t·n + i
    lengths = roll.t.reshape(-1)[order] + 1
    n_paths = jnp.sum(ends)
    max_len = jnp.maximum(jnp.max(jnp.where(jnp.arange(ends.shape[0]) < n_paths, lengths, 0)), 1)
    r = jnp.arange(batch_size)
    p, k = r // max_len, r % max_len
    exists = p < n_paths
    p = jnp.minimum(p, ends.shape[0] - 1)
    real = exists & (k < lengths[p])
    t_end, env_idx = order[p] // n_envs, order[p] % n_envs
    t_idx = jnp.clip(t_end - lengths[p] + 1 + k, 0, n_steps - 1)
    return t_idx, env_idx, real, exists.astype(jnp.float32)
