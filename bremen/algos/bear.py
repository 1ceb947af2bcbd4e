"""BEAR: bootstrapping error accumulation reduction (Kumar et al. 2019), offline, in pure JAX.

Defaults: the rlkit version of the D4RL paper (BASELINES B.2, recommended in F.4); the original repository's
switches (B.1) are fields. Per update, on a minibatch (s, a, r, s', terminal):

1. VAE (behavior model), encoder/decoder of :mod:`bremen.algos.agent`:
       L_vae = mean (dec(s, z) − a)² + ½·mean KL(N(μ_z, σ_z²) ‖ N(0, I)),   z ~ N(μ_z, σ_z²).          (1)
2. Critics: m = num_target_samples actions a'_j ~ π(·|s') from the *current* actor,
       v(s') = max_j [λ·min_k Q̄_k(s', a'_j) + (1 − λ)·max_k Q̄_k(s', a'_j)]                              (2)
       y = r + γ·(1 − terminal)·v(s'),      L_Q = Σ_k mean_B (Q_k(s, a) − y)².                          (3)
3. Actor: n = num_samples_match raw (pre-tanh) samples u_i ~ π(·|s) and n raw decoder outputs x_i (z clipped
   to [−½, ½]); with BEAR's kernels k_lap = exp(−‖u − x‖₁/(2σ)), k_gauss = exp(−‖u − x‖₂²/(2σ)),
       MMD(s) = sqrt(mean k(u, u') + mean k(x, x') − 2·mean k(u, x) + 1e-6)                              (4)
       Q̂_k(s) = mean_i Q_k(s, a_i)  ("all")  or  Q_k(s, a_1)  ("first"),
       Q̂(s) = min_k | max_k | mean_k Q̂_k(s)   (version 0 | 1 | 2)                                        (5)
       L_π = mean_B [−Q̂(s) + λ_std·sqrt((1 − δ)/δ)·std_k Q̂_k(s) + α·MMD(s)]                             (6)
   with α = exp(log α) ("auto") or 100 ("hardcoded"); the std term only with use_ensemble_variance. Before
   warmup_steps updates the actor minimises only α·mean MMD(s) (warm start).                              (7)
4. Lagrange multiplier ("auto"): one Adam step that maximises mean α·(MMD − ε) over log α (MMD fixed), so α
   grows while MMD > ε, then log α ← clip(log α, log_alpha_min, lagrange_thresh).                          (8)
5. Target critics: Q̄ ← τ·Q + (1 − τ)·Q̄.                                                                  (9)

Evaluation ("argmax_q"): num_action_samples actor samples at s, the one with the largest Q_1.             (10)

Differences from rlkit: by default the Q term (5) averages the n actor samples as the original repository does;
q_samples="first" takes rlkit's (and d3rlpy's) single sample instead, which costs 1/n of the Q term's work. The
warm-up loss (7) drops rlkit's constant −α·ε. The α
step uses alpha_lr (d3rlpy 2.8.1 wrongly uses the actor's learning rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bremen.algos.agent import (Batch, Spec, actor_init, actor_sample, adam_step, critic_step, q_apply, q_init,
                                soft_clipped_double_q, soft_update, vae_init, vae_loss, vae_sample)
from bremen.algos.divergences import KERNELS, mmd_bear

NAME = "bear"
MODES = ("auto", "hardcoded")
Q_SAMPLES = ("all", "first")
HARDCODED_WEIGHT = 100.0
"""The fixed MMD weight of mode "hardcoded" (6)."""


@dataclass(frozen=True)
class BEARConfig:
    """BEAR's hyperparameters (defaults: rlkit/D4RL, BASELINES B.2; original-repository switches from B.1)."""

    actor_hidden: tuple = (256, 256)
    """Hidden sizes of the tanh-Gaussian actor π (ReLU; output μ and raw log σ), eqs. (2), (4)–(7)."""
    log_std_min: float = -5.0
    """Lower end of the actor's log σ range: log σ = lo + ½(hi − lo)(tanh(l) + 1)."""
    log_std_max: float = 2.0
    """Upper end of the actor's log σ range."""
    q_hidden: tuple = (256, 256)
    """Hidden sizes of each critic Q_k(s, a), eqs. (2), (3), (5)."""
    n_q: int = 2
    """Number of critics k in (2), (3), (5)."""
    vae_hidden: tuple = (750, 750)
    """Hidden sizes of the VAE encoder and decoder, eqs. (1), (4)."""
    latent_dim: Optional[int] = None
    """VAE latent size in (1); None means 2·|A|."""
    actor_lr: float = 1e-4
    """Adam learning rate of the actor, loss (6)/(7)."""
    q_lr: float = 3e-4
    """Adam learning rate of the critics, loss (3)."""
    vae_lr: float = 3e-4
    """Adam learning rate of the VAE, loss (1)."""
    alpha_lr: float = 1e-3
    """Adam learning rate of log α in (8) (not the actor's, unlike d3rlpy 2.8.1)."""
    init_log_alpha: float = 0.0
    """Initial log α of (6), (8) (rlkit: 0; the original drew it from N(0, 1))."""
    log_alpha_min: float = -5.0
    """Lower clamp of log α in (8)."""
    lagrange_thresh: float = 10.0
    """Upper clamp of log α in (8) (original option lagrange_thresh)."""
    mmd_target: float = 0.05
    """ε, the MMD constraint threshold of (8)."""
    num_samples_match: int = 4
    """n, the actor and VAE samples per state in (4), (5)."""
    kernel: str = "laplacian"
    """Kernel of (4): "laplacian" or "gaussian" (original option kernel_type)."""
    mmd_sigma: float = 20.0
    """σ of the kernels in (4)."""
    num_target_samples: int = 10
    """m, the actions from the current actor at s' in (2)."""
    lam: float = 0.75
    """λ of the soft clipped double Q in (2)."""
    warmup_steps: int = 40_000
    """Updates with the MMD-only actor loss (7)."""
    tau: float = 0.005
    """Polyak rate τ of the target critics (9)."""
    discount: float = 0.99
    """γ of (3); only a true termination zeroes the bootstrap."""
    batch_size: int = 256
    """Minibatch size B of (1), (3), (6)."""
    num_action_samples: int = 100
    """Actor samples per state at evaluation (10)."""
    steps: int = 1_000_000
    """Gradient updates of a whole offline run."""
    eval_every: int = 5000
    """Updates between evaluations."""
    version: int = 0
    """Ensemble reduction in (5): 0 min, 1 max, 2 mean (original option version)."""
    q_samples: str = "all"
    """Actor samples in the Q term of (5): "all" n of them, averaged (original repository), or "first", the first
    only (rlkit's policy_update_style '0'; d3rlpy's BEAR likewise evaluates one sample)."""
    use_ensemble_variance: bool = False
    """Add the ensemble-std penalty of (6) (original option use_ensemble_variance)."""
    lamda: float = 0.5
    """λ_std, the weight of the std penalty in (6) (original option lamda)."""
    delta_conf: float = 0.1
    """δ of the std penalty factor sqrt((1 − δ)/δ) in (6)."""
    mode: str = "auto"
    """Weight of the MMD: "auto" Lagrange dual descent on α (8), "hardcoded" α = 100 in (6), (7) (option mode)."""
    noise_clip: Optional[float] = None
    """Clip the actor's N(0, I) noise to [−c, c] in (4), (5) (original: 0.5) and in (10), so the exported policy
    samples as act does; None: no clip. The target samples of (2) are never clipped."""


# Overrides of BEARConfig. cpu: a whole run (40k updates) in <= 10 min of update_many on the 2-core CPU. Measured
# with 1000 updates per call at hopper sizes (obs 11, act 3), the cores shared with other jobs (load 7-9):
# 69-90 updates/s (wall), 124-136 updates per CPU-second; 40k updates take 7.4-9.7 min. Cut from "paper":
# actor and critics 256-256 -> 64-64, VAE 750-750 -> 128-128 (at these sizes the per-update cost is mostly
# fixed overhead: 32-32 nets gave only 1.2-1.7x more), 1M -> 40k updates, warm-up 40k -> 5k updates (1/8 of the
# run; the original's 20 x 5000 of 1M was 1/10), evaluation every 2000 updates. Batch 256, the 4 MMD samples,
# the 10 target samples and the 100 evaluation samples are kept.
PRESETS = {
    "paper": {},
    "cpu": {"actor_hidden": (64, 64), "q_hidden": (64, 64), "vae_hidden": (128, 128), "steps": 40_000,
            "warmup_steps": 5000, "eval_every": 2000},
    # smoke: a pipeline check, not a result: 32-32 networks, batch 32, 10 evaluation samples, 200 updates.
    "smoke": {"actor_hidden": (32, 32), "q_hidden": (32, 32), "vae_hidden": (32, 32), "steps": 200,
              "eval_every": 100, "warmup_steps": 50, "batch_size": 32, "num_action_samples": 10},
}

# The original repository's command-line options → BEARConfig fields.
OPTION_NAMES = {"lagrange_thresh": "lagrange_thresh", "mmd_sigma": "mmd_sigma", "kernel_type": "kernel",
                "num_samples_match": "num_samples_match", "version": "version",
                "use_ensemble_variance": "use_ensemble_variance", "lamda": "lamda", "mode": "mode"}


def validate(config: BEARConfig) -> None:
    """Raise ValueError with one line naming the first invalid field (the caller adds the algorithm name)."""
    c = config
    if c.lagrange_thresh < 0:
        raise ValueError(f"lagrange_thresh must be >= 0, got {c.lagrange_thresh}")
    if c.log_alpha_min > c.lagrange_thresh:
        raise ValueError(f"log_alpha_min {c.log_alpha_min} exceeds lagrange_thresh {c.lagrange_thresh}")
    if c.kernel not in KERNELS:
        raise ValueError(f"unknown kernel {c.kernel!r}; known: {', '.join(KERNELS)}")
    if c.version not in (0, 1, 2):
        raise ValueError(f"version must be 0 (min), 1 (max) or 2 (mean), got {c.version!r}")
    if c.q_samples not in Q_SAMPLES:
        raise ValueError(f"unknown q_samples {c.q_samples!r}; known: {', '.join(Q_SAMPLES)}")
    if c.mode not in MODES:
        raise ValueError(f"unknown mode {c.mode!r}; known: {', '.join(MODES)}")
    if c.log_std_min >= c.log_std_max:
        raise ValueError(f"log_std_min {c.log_std_min} must be below log_std_max {c.log_std_max}")
    for name in ("actor_hidden", "q_hidden", "vae_hidden"):
        sizes = getattr(c, name)
        if len(sizes) == 0 or any(int(h) <= 0 for h in sizes):
            raise ValueError(f"{name} must be non-empty positive sizes, got {sizes!r}")
    positive = ("n_q", "actor_lr", "q_lr", "vae_lr", "alpha_lr", "mmd_sigma", "num_samples_match",
                "num_target_samples", "batch_size", "num_action_samples", "steps", "eval_every", "tau")
    for name in positive + (("latent_dim",) if c.latent_dim is not None else ()):
        if not getattr(c, name) > 0:
            raise ValueError(f"{name} must be positive, got {getattr(c, name)!r}")
    for name in ("warmup_steps", "lamda", "mmd_target"):
        if getattr(c, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(c, name)!r}")
    for name in ("discount", "lam", "delta_conf"):
        if not 0.0 <= getattr(c, name) <= 1.0 or (name == "delta_conf" and c.delta_conf == 0.0):
            raise ValueError(f"{name} must lie in {'(0, 1]' if name == 'delta_conf' else '[0, 1]'}, "
                             f"got {getattr(c, name)!r}")
    if c.noise_clip is not None and not c.noise_clip > 0:
        raise ValueError(f"noise_clip must be positive or None, got {c.noise_clip!r}")


def lagrange_step(opt, log_alpha, opt_state, mmd, mmd_target: float, log_alpha_min: float, log_alpha_max: float):
    """Eq. (8): one ``opt`` step on log α minimising −mean exp(log α)·(MMD − ε) (MMD held fixed), then the clamp."""
    mmd = jax.lax.stop_gradient(mmd)
    loss = lambda la: -jnp.mean(jnp.exp(la) * (mmd - mmd_target))
    log_alpha, opt_state = adam_step(opt, jax.grad(loss)(log_alpha), opt_state, log_alpha)
    return jnp.clip(log_alpha, log_alpha_min, log_alpha_max), opt_state


def policy_q(q, obs, a, q_samples: str):
    """Q̂_k(s) of (5), [n_q, B], for actor samples a [n, B, act]: the mean over all n, or the first sample only."""
    return jnp.mean(q_apply(q, obs, a if q_samples == "all" else a[:1]), axis=1)


class BEARState(NamedTuple):
    """Everything that changes during training."""

    actor: list
    q: list
    q_target: list
    vae: dict
    log_alpha: jax.Array
    actor_opt: optax.OptState
    q_opt: optax.OptState
    vae_opt: optax.OptState
    alpha_opt: optax.OptState
    step: jax.Array
    key: jax.Array


@dataclass(frozen=True)
class BEAR:
    """The BEAR agent for one task ``spec`` (the contract of :mod:`bremen.algos.agent`)."""

    spec: Spec
    config: BEARConfig = BEARConfig()

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim or 2 * self.spec.act_dim

    def _opt(self, name: str):
        return optax.adam(getattr(self.config, f"{name}_lr"))

    def init(self, key) -> BEARState:
        """Glorot actor, critics and VAE; target critics equal to the critics; log α = init_log_alpha."""
        validate(self.config)
        c = self.config
        k_actor, k_q, k_vae, key = jax.random.split(key, 4)
        actor = actor_init(k_actor, self.spec, c.actor_hidden)
        q = q_init(k_q, self.spec, c.q_hidden, c.n_q)
        vae = vae_init(k_vae, self.spec, c.vae_hidden, self.latent_dim)
        log_alpha = jnp.asarray(c.init_log_alpha, jnp.float32)
        return BEARState(actor, q, q, vae, log_alpha, self._opt("actor").init(actor), self._opt("q").init(q),
                         self._opt("vae").init(vae), self._opt("alpha").init(log_alpha),
                         jnp.asarray(0, jnp.int32), key)

    def _sample(self, actor, obs, key, noise_clip=None, n=None):
        """(a, u): actions and pre-tanh samples of π for obs [..., obs_dim] (n per row: [n, ..., act])."""
        a, _, u = actor_sample(actor, obs, key, self.spec, self.config.log_std_min, self.config.log_std_max,
                               noise_clip, n)
        return a, u

    def update(self, state: BEARState, batch: Batch):
        """One BEAR update, eqs. (1)–(9); pure and jittable."""
        c, spec = self.config, self.spec
        key, k_vae, k_next, k_pi, k_dec = jax.random.split(state.key, 5)
        terminal = batch.terminals.astype(jnp.float32)

        # (1) behavior VAE
        (l_vae, _), g = jax.value_and_grad(vae_loss, has_aux=True)(state.vae, batch.observations, batch.actions, k_vae, spec,
                                                                    self.latent_dim)
        vae, vae_opt = adam_step(self._opt("vae"), g, state.vae_opt, state.vae)

        # (2), (3) critics against the target critics at current-policy actions
        next_act, _ = self._sample(state.actor, batch.next_observations, k_next, n=c.num_target_samples)  # [n, B, act]
        v = jnp.max(soft_clipped_double_q(q_apply(state.q_target, batch.next_observations, next_act), c.lam), axis=0)
        y = jax.lax.stop_gradient(batch.rewards + c.discount * (1.0 - terminal) * v)

        q, q_opt, l_q, qs = critic_step(self._opt("q"), state.q, state.q_opt, batch.observations, batch.actions, y)

        # (4)–(7) actor against the new critics and the new VAE
        _, raw_vae = vae_sample(vae, batch.observations, k_dec, spec, self.latent_dim, n=c.num_samples_match)  # [n, B, act]
        raw_vae = jnp.swapaxes(jax.lax.stop_gradient(raw_vae), 0, 1)  # [B, n, act]
        weight = jnp.exp(state.log_alpha) if c.mode == "auto" else jnp.asarray(HARDCODED_WEIGHT, jnp.float32)

        def actor_loss_fn(actor):
            a, u = self._sample(actor, batch.observations, k_pi, c.noise_clip, c.num_samples_match)
            mmd = mmd_bear(jnp.swapaxes(u, 0, 1), raw_vae, c.kernel, c.mmd_sigma)  # [B]
            q_k = policy_q(q, batch.observations, a, c.q_samples)  # [n_q, B]
            q_hat = (jnp.min, jnp.max, jnp.mean)[c.version](q_k, axis=0)
            std = jnp.std(q_k, axis=0) if c.use_ensemble_variance else jnp.zeros_like(q_hat)
            penalty = c.lamda * np.sqrt((1.0 - c.delta_conf) / c.delta_conf) * std
            full = jnp.mean(-q_hat + penalty + weight * mmd)
            warm = jnp.mean(weight * mmd)
            return jnp.where(state.step < c.warmup_steps, warm, full), mmd

        (l_actor, mmd), g = jax.value_and_grad(actor_loss_fn, has_aux=True)(state.actor)
        actor, actor_opt = adam_step(self._opt("actor"), g, state.actor_opt, state.actor)

        # (8) Lagrange multiplier
        log_alpha, alpha_opt = state.log_alpha, state.alpha_opt
        if c.mode == "auto":
            log_alpha, alpha_opt = lagrange_step(self._opt("alpha"), log_alpha, alpha_opt, mmd, c.mmd_target,
                                                 c.log_alpha_min, c.lagrange_thresh)

        # (9) target critics
        q_target = soft_update(state.q_target, q, c.tau)

        new = BEARState(actor, q, q_target, vae, log_alpha, actor_opt, q_opt, vae_opt, alpha_opt, state.step + 1,
                        key)
        alpha = jnp.exp(log_alpha) if c.mode == "auto" else weight
        info = {"q_loss": l_q, "actor_loss": l_actor, "vae_loss": l_vae, "mmd": jnp.mean(mmd), "alpha": alpha,
                "q_mean": jnp.mean(qs)}
        return new, info

    def act(self, state: BEARState, obs, key):
        """Eq. (10): of num_action_samples actor samples per state, the one with the largest Q_1. obs [N, obs_dim]."""
        a, _ = self._sample(state.actor, obs, key, self.config.noise_clip, self.config.num_action_samples)
        best = jnp.argmax(q_apply(state.q, obs, a)[0], axis=0)  # [N]; a: [n, N, act]
        return jnp.take_along_axis(a, best[None, :, None], axis=0)[0]

    def export(self, state: BEARState):
        """The evaluation policy (10) as an exported "argmax_q" policy: (policy.json fields, policy.npz arrays)."""
        c, spec = self.config, self.spec
        arrays = {}
        q1 = jax.tree.map(lambda x: x[0], state.q)
        for prefix, layers in (("proposal", state.actor), ("q", q1)):
            for i, layer in enumerate(layers):
                arrays[f"{prefix}/layers/{i}/w"] = np.asarray(layer["w"], np.float32)
                arrays[f"{prefix}/layers/{i}/b"] = np.asarray(layer["b"], np.float32)
        fields = {"kind": "argmax_q", "obs_dim": spec.obs_dim, "act_dim": spec.act_dim,
                  "act_low": list(spec.act_low), "act_high": list(spec.act_high), "activation": "relu",
                  "obs_normalizer": None, "hidden_sizes": list(c.actor_hidden),
                  "proposal": "tanh_gaussian", "n_samples": c.num_action_samples, "latent_dim": None,
                  "latent_clip": None, "max_perturbation": 0.0, "log_std_min": c.log_std_min,
                  "log_std_max": c.log_std_max, "noise_clip": c.noise_clip}
        return fields, arrays

