"""The model-free offline algorithms by name: their agents, typed configs, presets and option names.

``agent_config(name, preset, options, settings)`` builds an algorithm's config: the defaults (the original
papers' values), then the preset's overrides, then options under the seed repositories' own names
(``--lagrange_thresh``, ``--alpha``, ...), then ``--set algo.key=value``; the result is validated. Every
mistake is a one-line :class:`UserError`.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, NamedTuple, Optional

from bremen.errors import UserError
from bremen.values import parse_value

BUILTIN_MODEL_BASED = ("bremen", "me_trpo")  # configured by the flags and the param file alone


class Entry(NamedTuple):
    """Where a model-free agent lives: its module, agent class, config class (names in the module) and label."""

    module: str
    agent: str
    config: str
    label: str


AGENTS: dict[str, Entry] = {}
METHODS: dict[str, Entry] = {}
"""Model-based algorithms with settings of their own (``--set algo.key=value``): module, config class, label."""


def register(name: str, module: str, agent: str, config: str, label: str) -> None:
    """Make agent ``name`` known to every command (``--algorithm name``, ``--set algo.key=value``, sweeps,
    tables). ``module`` is imported when the agent is first used; it holds the agent class, the config class,
    ``validate(config)`` and ``PRESETS`` (``{"paper": {...}, "cpu": {...}, "smoke": {...}}``), optionally
    ``OPTION_NAMES``, ``config_for(name)`` and ``finalize(config)`` (see docs/architecture.md)."""
    if name in AGENTS or name in METHODS or name in BUILTIN_MODEL_BASED:
        raise ValueError(f"an algorithm named {name!r} is registered already")
    AGENTS[name] = Entry(module, agent, config, label)


def register_model_based(name: str, module: str, config: str, label: str) -> None:
    """A model-based algorithm on the ensemble (its learner: bremen.build.make_learner) whose ``module`` holds
    its config class, ``validate``, ``PRESETS`` and optionally ``OPTION_NAMES``, ``TASKS`` and ``RECURSIVE_TASKS``
    (per-task values, offline and recursive) and
    ``FLAGS`` (BREMEN flags it sets)."""
    if name in AGENTS or name in METHODS or name in BUILTIN_MODEL_BASED:
        raise ValueError(f"an algorithm named {name!r} is registered already")
    METHODS[name] = Entry(module, None, config, label)


register("bc", "bremen.algos.bc_baseline", "BC", "BCConfig", "BC")
register("bcq", "bremen.algos.bcq", "BCQ", "BCQConfig", "BCQ")
register("bear", "bremen.algos.bear", "BEAR", "BEARConfig", "BEAR")
register("brac_primal", "bremen.algos.brac", "BRAC", "BRACConfig", "BRAC (primal)")
register("brac_dual", "bremen.algos.brac", "BRAC", "BRACConfig", "BRAC (dual)")
register("sac", "bremen.algos.sac", "SAC", "SACAgentConfig", "SAC")
register_model_based("mopo", "bremen.algos.mopo", "MOPOConfig", "MOPO")
register_model_based("morel", "bremen.algos.morel", "MOReLConfig", "MOReL")


def __getattr__(name: str):
    """``MODEL_FREE``, ``ALGORITHMS`` and ``LABELS``: views of the registered agents (a module attribute, so a
    later ``register`` shows)."""
    if name == "MODEL_FREE":
        return tuple(AGENTS)
    if name == "MODEL_BASED":
        return BUILTIN_MODEL_BASED + tuple(METHODS)
    if name == "ALGORITHMS":
        return BUILTIN_MODEL_BASED + tuple(METHODS) + tuple(AGENTS)
    if name == "LABELS":
        return {n: e.label for n, e in {**METHODS, **AGENTS}.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _entry(name: str) -> Entry:
    return AGENTS[name] if name in AGENTS else METHODS[name]


def module(name: str):
    return importlib.import_module(_entry(name).module)


def default_config(name: str):
    mod = module(name)
    if hasattr(mod, "config_for"):
        return mod.config_for(name)
    return getattr(mod, _entry(name).config)()


def option_names(name: str) -> dict:
    """The seed repositories' option names of algorithm ``name`` → its config fields."""
    return dict(getattr(module(name), "OPTION_NAMES", {}))


def all_option_names() -> dict:
    """Every baseline option name → the algorithms that have it."""
    out: dict = {}
    for name in (*AGENTS, *METHODS):
        for opt in option_names(name):
            out.setdefault(opt, []).append(name)
    return out


def _coerce(value: Any, current: Any, where: str):
    """A setting's value (text from the command line is parsed by bremen.values) as the type of the field's
    current value."""
    parsed = parse_value(value)
    if isinstance(current, bool):
        if isinstance(parsed, str) and parsed.lower() in ("true", "yes", "false", "no"):
            return parsed.lower() in ("true", "yes")
        if isinstance(parsed, bool) or parsed in (0, 1):
            return bool(parsed)
        raise UserError(f"{where}: {value!r} is not a boolean; give true or false")
    if isinstance(current, tuple) or isinstance(parsed, list):
        return tuple(parsed) if isinstance(parsed, (list, tuple)) else (parsed,)
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
        out[key] = _coerce(value, getattr(config, key), f"{source} {key}")
    return dataclasses.replace(config, **out)


def agent_config(name: str, preset: str = "paper", options: Optional[dict] = None,
                 settings: Optional[dict] = None, task: Optional[str] = None, recursive: bool = False):
    """The typed config of algorithm ``name`` (see the module docstring); a model-based method's per-task values
    (its module's ``TASKS``, or ``RECURSIVE_TASKS`` for a recursive run where it has them) come after the
    defaults, before the preset."""
    if name not in AGENTS and name not in METHODS:
        raise UserError(f"--algorithm {name!r} is not one of "
                        f"{', '.join(BUILTIN_MODEL_BASED + tuple(METHODS) + tuple(AGENTS))}")
    mod = module(name)
    config = default_config(name)
    tasks = (recursive and getattr(mod, "RECURSIVE_TASKS", None)) or getattr(mod, "TASKS", {})
    config = _apply(config, tasks.get(task, {}), f"{name} on {task}")
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
    return getattr(module(name), AGENTS[name].agent)(spec, config)
