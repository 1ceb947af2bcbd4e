"""Experiment parameter files: the original BREMEN JSON format, typed.

A param file (``configs/params_<task>_offline.json``) has top-level keys and four sections (``dynamics``,
``policy``, ``behavior_policy``, ``trpo``). Every key the original code read maps to a typed field below;
keys the original accepted but never read are accepted and listed in :data:`IGNORED_KEYS` (they have no
effect, see docs/configuration.md); any other key is an error that names the key and the file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bremen.errors import UserError
from bremen.values import parse_setting


@dataclass
class DynamicsParams:
    """``dynamics`` section: the dynamics-model ensemble."""

    model: str = "nn"
    """Model type; only "nn" (deterministic MLPs) exists. The original's "pnn" crashed and is not offered."""
    ensemble: bool = True
    """Use an ensemble (the original always did)."""
    n_layers: int = 2
    """Hidden layers per member."""
    hidden_size: int = 1024
    """Units per hidden layer."""
    activation: str = "relu"
    """Hidden activation: relu, tanh, swish or selu."""
    batch_size: int = 1000
    """Minibatch size (the last partial batch of an epoch is dropped)."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    epochs: int = 200
    """Maximum epochs per fit (early stopping on the validation split may end sooner)."""
    val: bool = True
    """Hold out a validation split and early-stop on it."""


@dataclass
class PolicyParams:
    """``policy`` section: the TRPO policy (a Gaussian MLP)."""

    network_shape: list = field(default_factory=lambda: [200, 200])
    """Hidden layer sizes."""
    activation: str = "relu"
    """Hidden activation."""
    reinitialize_every_itr: bool = False
    """Offline only: re-initialize the policy before every outer iteration."""


@dataclass
class BehaviorPolicyParams:
    """``behavior_policy`` section: the behavior-cloned policy that initializes TRPO."""

    network_shape: list = field(default_factory=lambda: [200, 200])
    """Hidden layer sizes (must equal the policy's for BC initialization)."""
    activation: str = "relu"
    """Hidden activation."""
    total_train_steps: int = 300000
    """BC gradient steps per fit."""
    batch_size: int = 256
    """BC minibatch size."""
    learning_rate: float = 5e-4
    """BC Adam learning rate."""


@dataclass
class TRPOParams:
    """``trpo`` section."""

    gamma: float = 0.99
    """Discount factor."""
    iterations: int = 25
    """TRPO iterations per outer iteration."""
    gae: float = 0.95
    """GAE lambda (0.97 for ant in the original files)."""


@dataclass
class ParamFile:
    """A whole param file (top-level keys plus the four sections)."""

    env_name: str = ""
    """Task name; must equal the --env flag."""
    log_save_dir: str = "./log/"
    """Root of the log directory tree."""
    start_onpol_iter: int = 0
    """First outer iteration index."""
    num_path_onpol: int = 3
    """Real-env evaluation budget after each outer iteration, in units of env_horizon steps."""
    env_horizon: int = 1000
    """Real-episode horizon; also the unit of the deployment batch formula."""
    max_train_data: int = 10_000_000
    """FIFO cap of the dynamics training data."""
    max_val_data: int = 10_000_000
    """FIFO cap of the dynamics validation data."""
    dynamics: DynamicsParams = field(default_factory=DynamicsParams)
    policy: PolicyParams = field(default_factory=PolicyParams)
    behavior_policy: BehaviorPolicyParams = field(default_factory=BehaviorPolicyParams)
    trpo: TRPOParams = field(default_factory=TRPOParams)
    ignored: dict = field(default_factory=dict)
    """Keys present in the file that the original never read, kept for the record (no effect)."""


SECTIONS = {
    "dynamics": DynamicsParams,
    "policy": PolicyParams,
    "behavior_policy": BehaviorPolicyParams,
    "trpo": TRPOParams,
}

# Keys the original code accepted but never read; "" is the top level.
IGNORED_KEYS = {
    "": {"num_path_random", "discard_ratio"},
    "dynamics": {
        "pre_training", "enable_particle_ensemble", "particles", "intrinsic_reward_only",
        "external_reward_evaluation_interval", "obs_var", "intrinsic_reward_coeff", "ita", "mode", "reg_coeff",
    },
    "policy": {"init_logstd"},
    "behavior_policy": {"init_logstd", "val", "reinitialize_every_itr"},
    "trpo": {"visualization", "visualize_iterations"},
}

_TYPES = {int: (int,), float: (int, float), bool: (bool,), str: (str,), list: (list,)}


def _build(cls, data: dict, where: str, path: str, ignored: dict, section: str):
    if not isinstance(data, dict):
        raise UserError(f"{path}: {where or 'top level'} must be a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else key
        if key in IGNORED_KEYS[section]:
            ignored[dotted] = value
            continue
        if key not in fields or key == "ignored":
            known = sorted(k for k in fields if k != "ignored") + sorted(IGNORED_KEYS[section])
            raise UserError(f"{path}: unknown key '{dotted}'; known keys here: {', '.join(known)}")
        if key in SECTIONS and section == "":
            kwargs[key] = _build(SECTIONS[key], value, key, path, ignored, key)
            continue
        ftype = fields[key].type
        ftype = {"int": int, "float": float, "bool": bool, "str": str, "list": list}.get(ftype, ftype)
        ok = _TYPES.get(ftype, (object,))
        if not isinstance(value, ok) or (ftype is not bool and isinstance(value, bool)):
            # JSON numbers like 1e7 arrive as floats: accept integral floats for int fields
            if ftype is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise UserError(f"{path}: key '{dotted}' must be {ftype.__name__}, got {value!r}")
        kwargs[key] = float(value) if ftype is float else value
    return cls(**kwargs)


def load_params(path: str | Path) -> ParamFile:
    """Read a param file in the original format (the original's own files load unchanged)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"param file {p} does not exist; the shipped ones are configs/params_<task>_offline.json")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: not valid JSON ({e})") from None
    ignored: dict[str, Any] = {}
    params = _build(ParamFile, data, "", str(p), ignored, "")
    params.ignored = ignored
    return params


def apply_overrides(params: ParamFile, overrides: list[str]) -> ParamFile:
    """``--set section.key=value`` items applied to ``params``, with the same key and type checks as a file."""
    if not overrides:
        return params
    data = params_to_dict(params)
    ignored = data.pop("ignored")
    for item in overrides:
        key, value = parse_setting(item)
        *path, last = key.split(".")
        node = data
        for part in path:
            if not isinstance(node.get(part), dict):
                raise UserError(f"--set {item!r}: unknown section '{part}'; sections are {', '.join(SECTIONS)}")
            node = node[part]
        node[last] = value
    out = _build(ParamFile, data, "", "--set", {}, "")
    out.ignored = ignored
    return out


def params_to_dict(params: ParamFile) -> dict:
    """The resolved parameters as a JSON-serializable dict (ignored keys under "ignored")."""
    return dataclasses.asdict(params)


def default_param_path(task: str) -> Path:
    """``configs/params_<task>_offline.json`` of this checkout (the original's --param_path default was broken)."""
    return Path(__file__).resolve().parent.parent / "configs" / f"params_{task}_offline.json"
