"""Behavior Regularized Actor Critic (Wu, Tucker, Nachum 2019): ``brac_primal`` and ``brac_dual``.

Actor π: tanh-Gaussian 200-200 (``bremen.algos.agent``); Q ensemble Q_1..Q_K (300-300, K = 2) combined as
Q_λ = λ·min_k Q_k + (1 − λ)·max_k Q_k (λ = 1: the minimum). α = clip(α_var, 0, 500), α_ent = clip(α_ent_var,
0, ∞) (BRAC's raw variables, gradients through ``clip_v2``). D̂(s) is the divergence of π from the behavior
policy π_b at s:

* primal (π_b cloned first, then frozen), n = 4 samples a_i ~ π(·|s), b_i ~ π_b(·|s):
  kl:  D̂ = (1/n) Σ_i [log π(a_i|s) − log π_b(clip(a_i)|s)]                                     (P-kl)
  mmd: D̂ = mean k(a, a') + mean k(b, b') − 2·mean k(a, b), k(x, y) = exp(−‖x − y‖₁/σ), σ = 20 (P-mmd)
* dual (no π_b; a critic c(s, a) 300-300 and the dataset action a_b, one sample a_π ~ π):
  kl:  D̂ = −softplus(c(s, a_b)) + log(softplus(c(s, a_π)) + 1e-8) + 1                          (D-kl)
  w:   D̂ = c(s, a_π) − c(s, a_b)                                                              (D-w)
  critic loss  L_c = −mean D̂ + 5·mean(max(‖∇_a c(s, ã)‖₂ − 1, 0)²), ã = a_b + u·(a_π − a_b)   (C)

Each update (BRAC's order): Q̄_k ← τ·Q_k + (1 − τ)·Q̄_k, then

  y   = r + γ·(1 − terminal)·(Q̄_λ(s', a') − α_ent·log π(a'|s') − [value_penalty]·α·D̂(s'))         (Q)
  L_Q = Σ_k mean (Q_k(s, a) − y)²,  a' ~ π(·|s')
  L_π = mean [α_ent·log π(a_π|s) + α·D̂(s) − 1{t > warm_start}·Q_λ(s, a_π)], with the new Q_k;       (π)
        t = BRAC updates done
  dual: c_iter critic steps on (C) — BRAC draws a fresh minibatch for each of the c_iter − 1 extra steps; one
        ``update`` gets one minibatch, so the extra steps reuse it with fresh policy samples and interpolations
  train_alpha:          L_α  = −mean α·(D̂(s) − target_divergence)                                  (A)
  train_alpha_entropy:  L_αe = mean α_ent·(−log π(a|s) − H̄), H̄ = −|A|                               (E)

value_penalty = True is BRAC-v, False BRAC-p. In the dual form D̂(s') in (Q) uses the dataset's next action
(``Batch.next_actions``, from ``bremen.data.Dataset.next_actions``: the next row's action where the episode goes on;
at the last row of a truncated episode the row's own action stands in, one row in a thousand on MuJoCo data).

Behavior policy (primal): the first ``behavior_steps`` updates only clone π_b with BRAC's BC recipe
(``bremen.algos.bc_baseline``, eqs. 1-2; a ``lax.cond`` on the step counter, so ``update`` stays one jittable
function); afterwards π_b is frozen and BRAC trains ``steps`` updates, ``total_steps`` in all.
``with_behavior`` installs a cloned π_b instead (then behavior_steps must be 0). The dual form has no π_b.
Log-densities of π_b clip actions by CLIP_EPS·h inside the box (BRAC: CLIP_EPS absolutely; same for h = 1).
Q̄ starts equal to Q (BRAC's target networks start from their own random initialisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bremen.algos.agent import (Batch, Spec, actor_init, actor_log_prob, actor_mode, actor_sample, adam_step,
                                q_apply, q_init, soft_clipped_double_q, soft_update,
                                tanh_gaussian_export)
from bremen.algos.bc_baseline import bc_step, clip_v2
from bremen.algos.divergences import DUAL_FORMS, gradient_penalty, mmd_squared_brac, sampled_kl
from bremen.models.nets import mlp_apply_concat, mlp_init

# the settings live in brac_config; the registry reads them from this module
from bremen.algos.brac_config import (ALPHA_MAX, CLIP_EPS, DIVERGENCES, EVAL_POLICIES, LOG_STD_MAX,  # noqa: F401
                                      LOG_STD_MIN, MAX_Q_SAMPLES, NAMES, OPTION_NAMES, PRESETS, BRACConfig,
                                      config_for, finalize, read_behavior_policy, validate)


def q_target_value(rew, terminal, next_q, next_logp, alpha_entropy, alpha, next_div, discount, value_penalty):
    """(Q): y = r + γ·(1 − terminal)·(Q̄_λ(s', a') − α_ent·log π(a'|s') − [value_penalty]·α·D̂(s'))."""
    v = next_q - alpha_entropy * next_logp
    if value_penalty:
        v = v - alpha * next_div
    return rew + discount * (1.0 - terminal) * v


class BRACState(NamedTuple):
    """critic: the dual critic c (None for primal); behavior, behavior_alpha: π_b and the raw α_ent of its
    cloning (None for dual); alpha, alpha_entropy: BRAC's raw α and α_ent variables."""

    actor: list
    actor_opt: optax.OptState
    q: list
    q_target: list
    q_opt: optax.OptState
    critic: Optional[list]
    critic_opt: Optional[optax.OptState]
    behavior: Optional[list]
    behavior_opt: Optional[optax.OptState]
    behavior_alpha: Optional[jax.Array]
    behavior_alpha_opt: Optional[optax.OptState]
    alpha: jax.Array
    alpha_opt: optax.OptState
    alpha_entropy: jax.Array
    alpha_entropy_opt: optax.OptState
    step: jax.Array
    key: jax.Array


@dataclass(frozen=True)
class BRAC:
    """BRAC (primal or dual, by ``config.form``) as a pure JAX agent (the contract of ``bremen.algos.agent``)."""

    spec: Spec
    config: BRACConfig = BRACConfig()

    def __post_init__(self):
        validate(self.config)

    @property
    def needs_behavior(self) -> bool:
        return self.config.form == "primal"

    def _target_entropy(self) -> float:
        t = self.config.target_entropy
        return -float(self.spec.act_dim) if t is None else float(t)

    def _sample(self, actor, obs, key, n=None):
        return actor_sample(actor, obs, key, self.spec, LOG_STD_MIN, LOG_STD_MAX, n=n)

    def init(self, key) -> BRACState:
        c, s = self.config, self.spec
        k_actor, k_q, k_c, k_b, key = jax.random.split(key, 5)
        f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
        actor, q = actor_init(k_actor, s, c.actor_hidden), q_init(k_q, s, c.q_hidden, c.n_q)
        critic = behavior = critic_opt = behavior_opt = b_alpha = b_alpha_opt = None
        if c.form == "dual":
            critic = mlp_init(k_c, [s.obs_dim + s.act_dim, *c.critic_hidden, 1])
            critic_opt = optax.adam(c.critic_lr).init(critic)
        else:
            behavior, b_alpha = actor_init(k_b, s, c.behavior_hidden), f32(1.0)
            b_opt = optax.adam(c.behavior_lr)
            behavior_opt, b_alpha_opt = b_opt.init(behavior), b_opt.init(b_alpha)
        alpha_opt = optax.adam(c.alpha_lr)
        return BRACState(actor, optax.adam(c.actor_lr).init(actor), q, q, optax.adam(c.q_lr).init(q), critic,
                         critic_opt, behavior, behavior_opt, b_alpha, b_alpha_opt, f32(c.alpha),
                         alpha_opt.init(f32(c.alpha)), f32(c.alpha_entropy), alpha_opt.init(f32(c.alpha_entropy)),
                         jnp.asarray(0, jnp.int32), key)

    def with_behavior(self, state: BRACState, actor_params) -> BRACState:
        """``state`` with π_b replaced by ``actor_params`` (e.g. a BC agent's ``state.actor``)."""
        if self.config.form != "primal":
            raise ValueError("brac_dual has no behavior policy; with_behavior is for brac_primal")
        if self.config.behavior_updates:
            raise ValueError("with_behavior: set behavior_steps=0, else the cloning phase overwrites π_b")
        shapes = lambda t: jax.tree.map(np.shape, t)  # noqa: E731
        if shapes(actor_params) != shapes(state.behavior):
            raise ValueError(f"with_behavior: π_b must have hidden sizes {self.config.behavior_hidden} "
                             f"({shapes(state.behavior)}), got {shapes(actor_params)}")
        return state._replace(behavior=jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), actor_params))

    # ----------------------------------------------------------------------------- divergence estimates
    def _critic_fn(self, critic):
        return lambda obs, act: mlp_apply_concat(critic, (obs, act), "relu")[..., 0]

    def divergence(self, state: BRACState, actor, obs, a_pi, a_b, key):
        """D̂(s) per row [B]: P-kl/P-mmd (own samples; a_pi, a_b unused) or D-kl/D-w (at a_pi and a_b)."""
        c = self.config
        if c.form == "dual":
            fn = self._critic_fn(state.critic)
            return DUAL_FORMS[c.divergence](fn(obs, a_b), fn(obs, a_pi))
        k_p, k_b = jax.random.split(key)
        a_p, logp, _ = self._sample(actor, obs, k_p, c.n_div_samples)  # [n, B, A]
        if c.divergence == "kl":
            logb = actor_log_prob(state.behavior, obs, a_p, self.spec, LOG_STD_MIN, LOG_STD_MAX, CLIP_EPS)
            return sampled_kl(logp, logb)
        b = jax.lax.stop_gradient(self._sample(state.behavior, obs, k_b, c.n_div_samples)[0])
        return mmd_squared_brac(jnp.swapaxes(a_p, 0, 1), jnp.swapaxes(b, 0, 1), c.mmd_kernel, c.mmd_sigma)

    # ----------------------------------------------------------------------------- losses and updates
    def actor_loss(self, actor, state: BRACState, batch: Batch, key):
        """(π) with the Q networks of ``state``; aux (D̂, log π)."""
        c = self.config
        k_pi, k_div = jax.random.split(key)
        a_pi, logp, _ = self._sample(actor, batch.observations, k_pi)
        div = self.divergence(state, actor, batch.observations, a_pi, batch.actions, k_div)
        q = soft_clipped_double_q(q_apply(state.q, batch.observations, a_pi), c.ensemble_q_lambda)
        q_on = (state.step - c.behavior_updates > c.warm_start).astype(jnp.float32)
        alpha, alpha_ent = clip_v2(state.alpha, 0.0, ALPHA_MAX), clip_v2(state.alpha_entropy, 0.0, jnp.inf)
        return jnp.mean(alpha_ent * logp + alpha * div - q_on * q), (div, logp)

    def _critic_step(self, state: BRACState, obs, a_b, key):
        k_pi, k_gp = jax.random.split(key)
        a_pi = jax.lax.stop_gradient(self._sample(state.actor, obs, k_pi)[0])

        def loss_fn(critic):
            fn = self._critic_fn(critic)
            div = DUAL_FORMS[self.config.divergence](fn(obs, a_b), fn(obs, a_pi))
            return -jnp.mean(div) + gradient_penalty(fn, obs, a_b, a_pi, k_gp, self.config.gp_coef)

        loss, g = jax.value_and_grad(loss_fn)(state.critic)
        critic, critic_opt = adam_step(optax.adam(self.config.critic_lr), g, state.critic_opt, state.critic)
        return state._replace(critic=critic, critic_opt=critic_opt), loss

    def _brac_update(self, state: BRACState, batch: Batch):
        c = self.config
        key, k_next, k_div2, k_pi, k_a, k_ae, *k_c = jax.random.split(state.key, 6 + c.c_iter)
        alpha, alpha_ent = clip_v2(state.alpha, 0.0, ALPHA_MAX), clip_v2(state.alpha_entropy, 0.0, jnp.inf)
        q_target = soft_update(state.q_target, state.q, c.tau)
        a2, logp2, _ = self._sample(state.actor, batch.next_observations, k_next)
        q2 = soft_clipped_double_q(q_apply(q_target, batch.next_observations, a2), c.ensemble_q_lambda)
        div2 = (self.divergence(state, state.actor, batch.next_observations, a2, batch.next_actions, k_div2)
                if c.value_penalty else jnp.zeros_like(q2))
        y = jax.lax.stop_gradient(q_target_value(batch.rewards, batch.terminals, q2, logp2, alpha_ent, alpha, div2,
                                                 c.discount, c.value_penalty))

        def q_loss_fn(q):
            qs = q_apply(q, batch.observations, batch.actions)
            return jnp.sum(jnp.mean((qs - y) ** 2, axis=-1)), qs

        (q_loss, qs), g = jax.value_and_grad(q_loss_fn, has_aux=True)(state.q)
        q, q_opt = adam_step(optax.adam(c.q_lr), g, state.q_opt, state.q)
        state = state._replace(q=q, q_target=q_target, q_opt=q_opt)
        (p_loss, (div, logp)), g = jax.value_and_grad(self.actor_loss, has_aux=True)(state.actor, state, batch, k_pi)
        actor, actor_opt = adam_step(optax.adam(c.actor_lr), g, state.actor_opt, state.actor)
        state = state._replace(actor=actor, actor_opt=actor_opt)
        info = {"q_loss": q_loss, "actor_loss": p_loss, "div_mean": jnp.mean(div), "q_mean": jnp.mean(qs),
                "entropy": -jnp.mean(logp), "critic_loss": jnp.zeros(())}
        if c.form == "dual":
            state, info["critic_loss"] = self._critic_step(state, batch.observations, batch.actions, k_c[0])
        if c.train_alpha:  # (A) with a fresh D̂ of the updated actor (and critic)
            k1, k2 = jax.random.split(k_a)
            a_pi = self._sample(state.actor, batch.observations, k1)[0]
            d = jax.lax.stop_gradient(self.divergence(state, state.actor, batch.observations, a_pi, batch.actions, k2))
            g = jax.grad(lambda a: -jnp.mean(clip_v2(a, 0.0, ALPHA_MAX) * (d - c.target_divergence)))(state.alpha)
            new_alpha, alpha_opt = adam_step(optax.adam(c.alpha_lr), g, state.alpha_opt, state.alpha)
            state = state._replace(alpha=new_alpha, alpha_opt=alpha_opt)
        if c.train_alpha_entropy:  # (E)
            lp = jax.lax.stop_gradient(self._sample(state.actor, batch.observations, k_ae)[1])
            g = jax.grad(lambda a: jnp.mean(clip_v2(a, 0.0, jnp.inf) * (-lp - self._target_entropy())))(
                state.alpha_entropy)
            new_ae, ae_opt = adam_step(optax.adam(c.alpha_lr), g, state.alpha_entropy_opt, state.alpha_entropy)
            state = state._replace(alpha_entropy=new_ae, alpha_entropy_opt=ae_opt)
        if c.form == "dual" and c.c_iter > 1:  # the c_iter − 1 extra critic steps, same minibatch
            state = jax.lax.scan(lambda s, k: (self._critic_step(s, batch.observations, batch.actions, k)[0], None), state,
                                 jnp.stack(k_c[1:]))[0]
        info["alpha"] = clip_v2(state.alpha, 0.0, ALPHA_MAX)
        info["alpha_entropy"] = clip_v2(state.alpha_entropy, 0.0, jnp.inf)
        return state._replace(step=state.step + 1, key=key), info

    def _behavior_update(self, state: BRACState, batch: Batch):
        c = self.config
        key, k = jax.random.split(state.key)
        behavior, b_opt, b_alpha, b_alpha_opt, info = bc_step(
            state.behavior, state.behavior_opt, state.behavior_alpha, state.behavior_alpha_opt, batch.observations,
            batch.actions, k, self.spec, c.behavior_lr, True, -float(self.spec.act_dim), LOG_STD_MIN, LOG_STD_MAX,
            CLIP_EPS)
        state = state._replace(behavior=behavior, behavior_opt=b_opt, behavior_alpha=b_alpha,
                               behavior_alpha_opt=b_alpha_opt, step=state.step + 1, key=key)
        return state, {"behavior_loss": info["bc_loss"], "behavior_nll": info["bc_nll"]}

    def update(self, state: BRACState, batch: Batch):
        """One update: a cloning step of π_b while step < behavior_updates, else a BRAC step. Info holds the
        keys of both phases (zeros for the phase not run) and ``behavior_phase`` (1.0 while cloning)."""
        if not self.config.behavior_updates:
            state, info = self._brac_update(state, batch)
            if self.config.form == "primal":
                info.update(behavior_loss=jnp.zeros(()), behavior_nll=jnp.zeros(()))
            return state, {**info, "behavior_phase": jnp.zeros(())}

        zeros = lambda f: jax.tree.map(jnp.zeros_like, jax.eval_shape(f, state, batch)[1])  # noqa: E731

        def behavior(s, b):
            s, info = self._behavior_update(s, b)
            return s, {**zeros(self._brac_update), **info, "behavior_phase": jnp.ones(())}

        def brac(s, b):
            s, info = self._brac_update(s, b)
            return s, {**zeros(self._behavior_update), **info, "behavior_phase": jnp.zeros(())}

        return jax.lax.cond(state.step < self.config.behavior_updates, behavior, brac, state, batch)

    # ----------------------------------------------------------------------------- test policy and export
    def act(self, state: BRACState, obs, key):
        """"main": a = m + h·tanh(μ(s)); "max_q": of MAX_Q_SAMPLES actions a_i ~ π(·|s), the argmax of Q_1."""
        if self.config.eval_policy == "main":
            return actor_mode(state.actor, obs, self.spec, LOG_STD_MIN, LOG_STD_MAX)
        a = self._sample(state.actor, obs, key, MAX_Q_SAMPLES)[0]  # [n, N, A]
        q1 = q_apply(jax.tree.map(lambda x: x[:1], state.q), obs, a)[0]  # [n, N]
        return jnp.take_along_axis(a, jnp.argmax(q1, axis=0)[None, :, None], axis=0)[0]

    def export(self, state: BRACState):
        c, s = self.config, self.spec
        if c.eval_policy == "main":
            return tanh_gaussian_export(state.actor, s, c.actor_hidden, LOG_STD_MIN, LOG_STD_MAX)
        arrays = {}
        for prefix, layers in (("proposal", state.actor), ("q", jax.tree.map(lambda x: x[0], state.q))):
            for i, layer in enumerate(layers):
                arrays[f"{prefix}/layers/{i}/w"] = np.asarray(layer["w"], np.float32)
                arrays[f"{prefix}/layers/{i}/b"] = np.asarray(layer["b"], np.float32)
        fields = {"kind": "argmax_q", "obs_dim": s.obs_dim, "act_dim": s.act_dim, "act_low": list(s.act_low),
                  "act_high": list(s.act_high), "activation": "relu", "obs_normalizer": None,
                  "hidden_sizes": list(c.actor_hidden), "proposal": "tanh_gaussian", "n_samples": MAX_Q_SAMPLES,
                  "latent_dim": None, "latent_clip": None, "max_perturbation": 0.0, "log_std_min": LOG_STD_MIN,
                  "log_std_max": LOG_STD_MAX, "noise_clip": None}
        return fields, arrays

