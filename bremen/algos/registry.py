"""The model-free offline algorithms by name: their agents, typed configs, presets and option names.

``agent_config(name, preset, options, settings)`` builds an algorithm's config: the defaults (the original
papers' values), then the preset's overrides, then options under the seed repositories' own names
(``--lagrange_thresh``, ``--alpha``, ...), then ``--set algo.key=value``; the result is validated. Every
mistake is a one-line :class:`UserError`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from typing import Any, Optional

from bremen.errors import UserError

MODEL_BASED = ("bremen", "me_trpo")
# name -> (module, agent class, config class)
AGENTS = {
    "bc": ("bremen.algos.bc_baseline", "BC", "BCConfig"),
    "bcq": ("bremen.algos.bcq", "BCQ", "BCQConfig"),
    "bear": ("bremen.algos.bear", "BEAR", "BEARConfig"),
    "brac_primal": ("bremen.algos.brac", "BRAC", "BRACConfig"),
    "brac_dual": ("bremen.algos.brac", "BRAC", "BRACConfig"),
    "sac": ("bremen.algos.sac_agent", "SACAgent", "SACAgentConfig"),
}
MODEL_FREE = tuple(AGENTS)
ALGORITHMS = MODEL_BASED + MODEL_FREE
LABELS = {"bc": "BC", "bcq": "BCQ", "bear": "BEAR", "brac_primal": "BRAC (primal)", "brac_dual": "BRAC (dual)",
          "sac": "SAC"}


def module(name: str):
    return importlib.import_module(AGENTS[name][0])


def default_config(name: str):
    mod = module(name)
    if hasattr(mod, "config_for"):
        return mod.config_for(name)
    return getattr(mod, AGENTS[name][2])()


def option_names(name: str) -> dict:
    """The seed repositories' option names of algorithm ``name`` → its config fields."""
    return dict(getattr(module(name), "OPTION_NAMES", {}))


def all_option_names() -> dict:
    """Every baseline option name → the algorithms that have it."""
    out: dict = {}
    for name in MODEL_FREE:
        for opt in option_names(name):
            out.setdefault(opt, []).append(name)
    return out


def _parse(value: Any, current: Any, where: str):
    """A command-line string as the type of the field's current value."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in ("none", "null"):
        return None
    if isinstance(current, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise UserError(f"{where}: {value!r} is not a boolean; give true or false")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = text
    if isinstance(current, tuple) or isinstance(parsed, list):
        items = parsed if isinstance(parsed, list) else [int(v) for v in text.strip("()[]").split(",") if v.strip()]
        return tuple(items)
    if isinstance(current, float) and isinstance(parsed, int) and not isinstance(parsed, bool):
        return float(parsed)
    if isinstance(current, (int, float)) and not isinstance(parsed, (int, float)):
        raise UserError(f"{where}: {value!r} is not a number")
    return parsed


def _apply(config, changes: dict, source: str):
    fields = {f.name for f in dataclasses.fields(config)}
    out = {}
    for key, value in changes.items():
        if key not in fields:
            raise UserError(f"{source}: {key!r} is not a setting of {type(config).__name__}; known: "
                            f"{', '.join(sorted(fields))}")
        out[key] = _parse(value, getattr(config, key), f"{source} {key}")
    return dataclasses.replace(config, **out)


def agent_config(name: str, preset: str = "paper", options: Optional[dict] = None,
                 settings: Optional[dict] = None):
    """The typed config of algorithm ``name`` (see the module docstring)."""
    if name not in AGENTS:
        raise UserError(f"--algorithm {name!r} is not one of {', '.join(ALGORITHMS)}")
    mod = module(name)
    config = default_config(name)
    presets = getattr(mod, "PRESETS", {})
    if preset not in presets:
        raise UserError(f"--preset {preset!r} is not one of {', '.join(presets)} for {name}")
    config = _apply(config, presets[preset], f"preset {preset}")
    names = option_names(name)
    config = _apply(config, {names[k]: v for k, v in (options or {}).items()}, f"--{name} option")
    config = _apply(config, settings or {}, "--set algo.")
    try:
        mod.validate(config)
    except ValueError as e:
        head, sep, rest = str(e).partition(": ")  # the module's own prefix ("brac: ...") gives way to the name
        raise UserError(f"{name}: {rest if sep and ' ' not in head and name.startswith(head) else e}")
    return mod.finalize(config) if hasattr(mod, "finalize") else config


def make_agent(name: str, spec, config):
    return getattr(module(name), AGENTS[name][1])(spec, config)
