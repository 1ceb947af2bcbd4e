"""The ``argmax_q`` kind of exported policy: the best of N proposed actions under a Q network.

BCQ, BEAR and BRAC's ``max_q`` evaluation policy act this way. For an observation s:

1. N proposals a_1..a_N:
   * ``proposal = "vae"`` (BCQ): a_i = m_A + h_A·tanh(dec(s, z_i)), z_i ~ N(0, I) clipped to
     [−latent_clip, latent_clip] (``latent_dim`` numbers);
   * ``proposal = "tanh_gaussian"`` (BEAR, BRAC): a_i = m_A + h_A·tanh(μ(s) + σ(s)·ε_i), the actor's head as
     in the ``tanh_gaussian`` kind (ε_i clipped to [−noise_clip, noise_clip] when ``noise_clip`` is set);
2. with ``max_perturbation`` φ > 0 (BCQ): a_i ← clip(a_i + φ·h_A·tanh(ξ(s, a_i)), low, high);
3. the action is the a_i with the largest Q(s, a_i).

Arrays in ``policy.npz``: ``proposal/layers/<i>/{w,b}``, optional ``perturb/layers/<i>/{w,b}`` and
``q/layers/<i>/{w,b}`` (each network's input is the concatenation named above, ReLU hidden layers).

The proposals are random, so the action is too. Unless an ``rng`` is given, each observation's noise is
drawn from a generator seeded by that observation's bytes: the policy is then a fixed function of the
observation (also in a batch, row by row), and the same env seeds give the same returns, as for the other
kinds.
"""

from __future__ import annotations

import zlib
from typing import Optional

import numpy as np

from bremen.errors import UserError

KIND = "argmax_q"
FIELDS = ("proposal", "n_samples", "latent_dim", "latent_clip", "max_perturbation", "noise_clip")


def _mlp(layers, x):
    for w, b in layers[:-1]:
        x = np.maximum(x @ w + b, 0.0)
    w, b = layers[-1]
    return x @ w + b


def _layers(arrays: dict, prefix: str) -> list:
    out, i = [], 0
    while f"{prefix}/layers/{i}/w" in arrays:
        out.append((np.asarray(arrays[f"{prefix}/layers/{i}/w"], np.float32),
                    np.asarray(arrays[f"{prefix}/layers/{i}/b"], np.float32)))
        i += 1
    return out


def _normal(rng: Optional[np.random.Generator], obs, shape) -> np.ndarray:
    """Standard normals ``[B, *shape]``: from ``rng``, or row b's from a generator seeded by row b's bytes."""
    if rng is not None:
        return rng.standard_normal((len(obs),) + shape, dtype=np.float32)
    return np.stack([np.random.default_rng(zlib.crc32(row.tobytes())).standard_normal(shape, dtype=np.float32)
                     for row in obs])


class ArgmaxQPolicy:
    """An ``argmax_q`` policy evaluated with NumPy (see the module docstring)."""

    kind = KIND
    batched_evaluation = True
    """Each row's noise is seeded by that row alone, so episodes can run side by side on a batch of
    observations (bremen.evaluation) and act as they would one at a time (up to BLAS rounding)."""

    def __init__(self, fields: dict, arrays: dict, metadata: Optional[dict] = None):
        self.fields = {k: fields.get(k) for k in ("obs_dim", "act_dim", "act_low", "act_high", "hidden_sizes",
                                                   "log_std_min", "log_std_max", *FIELDS)}
        self.proposal = _layers(arrays, "proposal")
        self.perturb = _layers(arrays, "perturb")
        self.q = _layers(arrays, "q")
        if not self.proposal or not self.q:
            raise UserError("an argmax_q policy needs proposal/ and q/ layers; the policy file is incomplete")
        if fields.get("proposal") not in ("vae", "tanh_gaussian"):
            raise UserError(f"argmax_q proposal {fields.get('proposal')!r} is not 'vae' or 'tanh_gaussian'")
        self.obs_dim, self.act_dim = int(fields["obs_dim"]), int(fields["act_dim"])
        self.act_low = np.broadcast_to(np.asarray(fields["act_low"], np.float32), (self.act_dim,)).copy()
        self.act_high = np.broadcast_to(np.asarray(fields["act_high"], np.float32), (self.act_dim,)).copy()
        self.mid, self.half = (self.act_high + self.act_low) / 2, (self.act_high - self.act_low) / 2
        self.n = int(fields["n_samples"])
        self.metadata = dict(metadata or {})

    def _proposals(self, obs, rng):
        f = self.fields
        s = np.repeat(obs[:, None, :], self.n, axis=1)  # [B, N, obs]
        if f["proposal"] == "vae":
            c = f["latent_clip"]
            z = np.clip(_normal(rng, obs, (self.n, int(f["latent_dim"]))), -c, c)
            return self.mid + self.half * np.tanh(_mlp(self.proposal, np.concatenate([s, z], -1))), s
        out = _mlp(self.proposal, s)
        mu, raw = out[..., : self.act_dim], out[..., self.act_dim:]
        lo, hi = f["log_std_min"], f["log_std_max"]
        eps = _normal(rng, obs, (self.n, self.act_dim))
        if f.get("noise_clip") is not None:
            eps = np.clip(eps, -f["noise_clip"], f["noise_clip"])
        log_std = lo + 0.5 * (hi - lo) * (np.tanh(raw) + 1.0)
        return self.mid + self.half * np.tanh(mu + np.exp(log_std) * eps), s

    def act(self, obs, deterministic: bool = True, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """The best of ``n_samples`` proposals for ``obs [obs_dim]`` or ``[B, obs_dim]``."""
        x = np.asarray(obs, np.float32)
        single = x.ndim == 1
        x = x[None] if single else x
        a, s = self._proposals(x, rng)
        phi = float(self.fields.get("max_perturbation") or 0.0)
        if phi > 0 and self.perturb:
            a = np.clip(a + phi * self.half * np.tanh(_mlp(self.perturb, np.concatenate([s, a], -1))),
                        self.act_low, self.act_high)
        q = _mlp(self.q, np.concatenate([s, a], -1))[..., 0]  # [B, N]
        best = a[np.arange(len(a)), np.argmax(q, axis=1)]
        return best[0] if single else best

    def spec(self) -> dict:
        """The architecture part of ``policy.json`` (``policy_io.save_policy`` puts the format first)."""
        return {"kind": KIND, "activation": "relu",
                "obs_normalizer": None, **{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                           for k, v in self.fields.items()}}

    def arrays(self) -> dict:
        out = {}
        for prefix, layers in (("proposal", self.proposal), ("perturb", self.perturb), ("q", self.q)):
            for i, (w, b) in enumerate(layers):
                out[f"{prefix}/layers/{i}/w"], out[f"{prefix}/layers/{i}/b"] = w, b
        return out
