"""The one parser of a setting's text as the command line gives it (``--set KEY=VALUE`` and the baselines' options).

``parse_setting("dynamics.epochs=200")`` → ``("dynamics.epochs", 200)``. The value is JSON where it parses
(numbers, true/false, null, lists, strings in quotes), ``none`` is null, ``(64, 64)`` or ``64,64`` is a list of
numbers, and anything else is the text itself. The typed configs check the types (bremen.config for the param
file's sections, bremen.algos.registry for the agents' settings).
"""

from __future__ import annotations

import json
from typing import Any

from bremen.errors import UserError


def parse_value(text: Any) -> Any:
    """A value's text as a Python value (see the module docstring); a non-string is returned unchanged."""
    if not isinstance(text, str):
        return text
    s = text.strip()
    if s.lower() in ("none", "null"):
        return None
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        pass
    inner = s[1:-1] if s[:1] in "([" and s[-1:] in ")]" else s
    parts = [p.strip() for p in inner.split(",")]
    if "," in inner or inner != s:
        try:
            return [json.loads(p) for p in parts if p]
        except json.JSONDecodeError:
            pass
    return s


def parse_setting(item: str, example: str = "dynamics.epochs=200") -> tuple[str, Any]:
    """``SECTION.KEY=VALUE`` → (key, parsed value); one line (UserError) when there is no ``=`` or no key."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. --set {example}")
    return key.strip(), parse_value(text)
