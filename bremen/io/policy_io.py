"""Exported policies: a small, framework-independent format, read and run with NumPy alone.

A policy is a directory holding two files:

``policy.npz``
    The MLP layers as plain float32 arrays ``layers/<i>/w`` (shape [in, out], applied as ``x @ w + b``) and
    ``layers/<i>/b`` (shape [out]), and, when the policy normalizes observations, ``obs_mean`` and
    ``obs_std`` (shape [obs_dim]; the network sees ``(obs − obs_mean) / obs_std``).
``policy.json``
    ``format`` ("bremen-policy"), ``format_version`` (1), ``kind``, ``obs_dim``, ``act_dim``,
    ``hidden_sizes``, ``activation``, ``act_low``/``act_high`` (per dimension), ``log_std_min``/``log_std_max``,
    ``obs_normalizer`` ("mean_std" or null) and free-form provenance: ``task``, ``return`` (what was
    reached and how it was measured: mean/std/min/max, episodes, deterministic, env seeds), ``env_steps``,
    ``seed``, ``bremen_version``, ``created``, ...

A pair ``<name>.npz`` + ``<name>.json`` with the same contents is accepted too (pass either file or the
common stem). Every kind shares the head: the last layer outputs 2·act_dim numbers (m, l) and

    log σ(s) = log_std_min + ½(log_std_max − log_std_min)·(tanh(l) + 1)

``kind`` says how they make an action (m_A, h_A = midpoint and half-range of the action box):

``tanh_gaussian`` (SAC/BRAC actor)
    u = m + σ·ε, ε ~ N(0, I),  a = m_A + h_A·tanh(u); deterministic a = m_A + h_A·tanh(m).
``gaussian`` (BREMEN's policy)
    μ = m_A + h_A·tanh(m), a = μ + s_g·σ·ε (or a = μ + s_g·ε when ``const_sampling``) with s_g =
    ``sampling_std`` (1.0 and false when absent); deterministic a = μ. Observations are normalized by
    running statistics (``obs_normalizer`` "mean_std"). Samples are not clipped; the env clips.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Optional

import numpy as np

from bremen import __version__
from bremen.errors import UserError
from bremen.io.argmax_q_policy import ArgmaxQPolicy

FORMAT = "bremen-policy"
FORMAT_VERSION = 1
KINDS = ("tanh_gaussian", "gaussian")
LOADABLE_KINDS = KINDS + ("argmax_q",)  # argmax_q: bremen.io.argmax_q_policy (BCQ, BEAR, BRAC's max_q)
SPEC_KEYS = frozenset({
    "format", "format_version", "kind", "obs_dim", "act_dim", "hidden_sizes", "activation", "act_low",
    "act_high", "log_std_min", "log_std_max", "obs_normalizer", "sampling_std", "const_sampling",
    "proposal", "n_samples", "latent_dim", "latent_clip", "max_perturbation", "noise_clip",
})
"""Keys of ``policy.json`` that describe the network; every other key is provenance metadata."""
ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
}


class NumpyPolicy:
    """An MLP policy evaluated with NumPy (float32). See the module docstring for the equations."""

    def __init__(
        self,
        kind: str,
        layers: list,
        act_low,
        act_high,
        activation: str = "relu",
        log_std_min: float = -5.0,
        log_std_max: float = 0.0,
        obs_mean=None,
        obs_std=None,
        sampling_std: float = 1.0,
        const_sampling: bool = False,
        metadata: Optional[dict] = None,
    ):
        if kind not in KINDS:
            raise ValueError(f"unknown policy kind {kind!r}; known kinds: {', '.join(KINDS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
        self.kind = kind
        self.layers = [(np.asarray(l["w"], np.float32), np.asarray(l["b"], np.float32)) for l in layers]
        self.obs_dim = self.layers[0][0].shape[0]
        self.act_dim = self.layers[-1][0].shape[1] // 2
        self.act_low = np.broadcast_to(np.asarray(act_low, np.float32), (self.act_dim,)).copy()
        self.act_high = np.broadcast_to(np.asarray(act_high, np.float32), (self.act_dim,)).copy()
        self.act_mid = (self.act_high + self.act_low) / 2.0
        self.act_half = (self.act_high - self.act_low) / 2.0
        self.activation = activation
        self._act_fn = ACTIVATIONS[activation]
        self.log_std_min = float(log_std_min)
        self.log_std_max = float(log_std_max)
        if (obs_mean is None) != (obs_std is None):
            raise ValueError("give both obs_mean and obs_std, or neither")
        self.obs_mean = None if obs_mean is None else np.asarray(obs_mean, np.float32)
        self.obs_std = None if obs_std is None else np.asarray(obs_std, np.float32)
        self.sampling_std = float(sampling_std)
        self.const_sampling = bool(const_sampling)
        self.metadata = dict(metadata or {})

    @property
    def hidden_sizes(self) -> list:
        return [w.shape[1] for w, _ in self.layers[:-1]]

    def head(self, obs):
        """(m, log σ) for observations ``obs [..., obs_dim]``."""
        x = np.asarray(obs, np.float32)
        if self.obs_mean is not None:
            x = (x - self.obs_mean) / self.obs_std
        for w, b in self.layers[:-1]:
            x = self._act_fn(x @ w + b)
        w, b = self.layers[-1]
        out = x @ w + b
        m, raw = out[..., : self.act_dim], out[..., self.act_dim :]
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (np.tanh(raw) + 1.0)
        return m, log_std

    def act(self, obs, deterministic: bool = True, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """An action for ``obs [obs_dim]`` (or a batch ``[B, obs_dim]``); ``rng`` is needed to sample."""
        m, log_std = self.head(obs)
        if self.kind == "tanh_gaussian":
            if not deterministic:
                m = m + np.exp(log_std) * self._noise(rng, m.shape)
            return self.act_mid + self.act_half * np.tanh(m)
        mu = self.act_mid + self.act_half * np.tanh(m)
        if deterministic:
            return mu
        std = self.sampling_std if self.const_sampling else self.sampling_std * np.exp(log_std)
        return mu + std * self._noise(rng, mu.shape)

    @staticmethod
    def _noise(rng, shape):
        if rng is None:
            raise ValueError("a stochastic action needs rng (a numpy.random.Generator)")
        return rng.standard_normal(shape, dtype=np.float32)

    def spec(self) -> dict:
        """The architecture part of ``policy.json`` (:func:`save_policy` puts the format and its version first)."""
        return {
            "kind": self.kind,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "hidden_sizes": self.hidden_sizes,
            "activation": self.activation,
            "act_low": self.act_low.tolist(),
            "act_high": self.act_high.tolist(),
            "log_std_min": self.log_std_min,
            "log_std_max": self.log_std_max,
            "obs_normalizer": None if self.obs_mean is None else "mean_std",
            **({"sampling_std": self.sampling_std, "const_sampling": self.const_sampling}
               if self.kind == "gaussian" else {}),
        }

    def arrays(self) -> dict:
        """The contents of ``policy.npz``."""
        out = {}
        for i, (w, b) in enumerate(self.layers):
            out[f"layers/{i}/w"] = w
            out[f"layers/{i}/b"] = b
        if self.obs_mean is not None:
            out["obs_mean"] = self.obs_mean
            out["obs_std"] = self.obs_std
        return out


def run_or_policy_dir(path) -> Path:
    """``path`` itself, or its ``policy_final/`` when ``path`` is a run directory (holds no policy of its own)."""
    p = Path(path)
    if p.is_dir() and not (p / "policy.json").is_file() and (p / "policy_final").is_dir():
        return p / "policy_final"
    return p


def policy_files(path) -> tuple[Path, Path]:
    """(npz, json) paths of a policy given its directory, either file of a pair, or a pair's stem."""
    p = Path(path)
    if p.is_dir():
        return p / "policy.npz", p / "policy.json"
    if p.suffix in (".npz", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")


def save_policy(path, policy: NumpyPolicy, metadata: Optional[dict] = None) -> Path:
    """Write ``policy`` as the directory ``path`` (``policy.npz`` + ``policy.json``); returns ``path``.

    The files are written into a temporary directory beside ``path`` that then replaces ``path``, so a
    reader never sees a half-written policy. ``metadata`` (task, return, env_steps, seed, ...) is merged
    into ``policy.json`` after the architecture; ``bremen_version`` and ``created`` are filled in.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "bremen_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **policy.metadata,
        **(metadata or {}),
    }
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, **policy.spec(),
           **{k: v for k, v in meta.items() if k not in SPEC_KEYS}}
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    old = path.with_name(f".{path.name}.{uuid.uuid4().hex}.old")
    tmp.mkdir()
    try:
        np.savez(tmp / "policy.npz", **policy.arrays())
        (tmp / "policy.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_policy(path) -> NumpyPolicy:
    """Read a policy written by :func:`save_policy` (a directory, or a ``.npz`` + ``.json`` pair)."""
    npz_path, json_path = policy_files(path)
    for f in (npz_path, json_path):
        if not f.is_file():
            raise UserError(f"{path}: no policy there ({f} is missing); give a policy directory such as weights/hopper/")
    try:
        doc = json.loads(json_path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{json_path}: not valid JSON ({e.msg} at line {e.lineno}); the policy file is damaged")
    if doc.get("format") != FORMAT:
        raise UserError(f"{json_path}: not a bremen policy (format is {doc.get('format')!r}, expected {FORMAT!r})")
    if doc.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(
            f"{json_path}: format_version {doc['format_version']} is newer than this bremen reads "
            f"({FORMAT_VERSION}); upgrade bremen"
        )
    if doc.get("kind") not in LOADABLE_KINDS:
        raise UserError(f"{json_path}: unknown policy kind {doc.get('kind')!r}; known kinds: "
                        f"{', '.join(LOADABLE_KINDS)}")
    with np.load(npz_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if doc["kind"] not in KINDS:  # argmax_q
        return policy_from_export(doc, arrays, {k: v for k, v in doc.items() if k not in SPEC_KEYS})
    n_layers = len(doc["hidden_sizes"]) + 1
    try:
        layers = [{"w": arrays[f"layers/{i}/w"], "b": arrays[f"layers/{i}/b"]} for i in range(n_layers)]
    except KeyError as e:
        raise UserError(f"{npz_path}: missing array {e.args[0]!r}; the policy file is damaged or incomplete")
    norm = doc.get("obs_normalizer") == "mean_std"
    policy = NumpyPolicy(
        doc["kind"],
        layers,
        doc["act_low"],
        doc["act_high"],
        activation=doc.get("activation", "relu"),
        log_std_min=doc.get("log_std_min", -5.0),
        log_std_max=doc.get("log_std_max", 0.0),
        obs_mean=arrays["obs_mean"] if norm else None,
        obs_std=arrays["obs_std"] if norm else None,
        sampling_std=doc.get("sampling_std", 1.0),
        const_sampling=doc.get("const_sampling", False),
        metadata={k: v for k, v in doc.items() if k not in SPEC_KEYS},
    )
    if policy.obs_dim != doc["obs_dim"] or policy.act_dim != doc["act_dim"]:
        raise UserError(
            f"{npz_path}: layer shapes give obs_dim {policy.obs_dim}, act_dim {policy.act_dim} but policy.json "
            f"says {doc['obs_dim']}, {doc['act_dim']}; the files do not belong together"
        )
    return policy


def policy_from_export(fields: dict, arrays: dict, metadata: Optional[dict] = None):
    """The policy object of an agent's ``export()`` (``policy.json`` fields, ``policy.npz`` arrays)."""
    if fields["kind"] == "argmax_q":
        return ArgmaxQPolicy(fields, arrays, metadata)
    n_layers = len(fields["hidden_sizes"]) + 1
    layers = [{"w": arrays[f"layers/{i}/w"], "b": arrays[f"layers/{i}/b"]} for i in range(n_layers)]
    return NumpyPolicy(fields["kind"], layers, fields["act_low"], fields["act_high"], fields.get("activation", "relu"),
                       fields.get("log_std_min", -5.0), fields.get("log_std_max", 0.0), metadata=metadata)
