"""Matmul FLOPs of a traced JAX function, counted from its jaxpr (loops counted by their trip counts).

``dot_general`` costs 2·(batch)·M·N·K. ``scan`` bodies count ``length`` times, ``cond``/``switch`` the
costliest branch, and ``while`` bodies ``trips(kind)`` times where ``kind`` is read from the loop's shape:

* ``"line_search"`` — a boolean in the carry (the accepted flag of TRPO's backtracking line search),
* ``"nan_retry"``   — the condition tests for NaN (``x != x``: the linear baseline's ridge retries),
* ``"bounded"``     — anything else, counted ``bound`` times, the integer literal the counter is compared
  with (TRPO's conjugate gradient runs all its iterations unless the residual underflows).

Used by bench/trpo_iteration.py, bench/gpu_paper_size.py and bench/baselines_vs_d3rlpy.py; the counter does
not depend on the package's code, so the same count is taken of two commits.
"""

from __future__ import annotations

from typing import Callable, Dict

import jax
import numpy as np
from jax.extend import core as jcore


def dot_flops(eqn) -> int:
    """2 · (output size) · (contracted size) of one ``dot_general``."""
    (contract, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    return 2 * int(np.prod(eqn.outvars[0].aval.shape)) * int(np.prod([lhs[d] for d in contract]))


def while_kind(eqn) -> tuple:
    """``(kind, bound)`` of a ``while`` equation (see the module docstring)."""
    cond = eqn.params["cond_jaxpr"].jaxpr
    carry = eqn.invars[eqn.params["cond_nconsts"] + eqn.params["body_nconsts"]:]
    if any(getattr(v.aval, "dtype", None) == np.bool_ and v.aval.shape == () for v in carry):
        return "line_search", None
    prims = {e.primitive.name for e in _all_eqns(cond)}
    if "ne" in prims or "is_finite" in prims:
        return "nan_retry", None
    bounds = [int(v.val) for e in cond.eqns if e.primitive.name == "lt" for v in e.invars
              if isinstance(v, jcore.Literal)]
    return "bounded", (bounds[0] if bounds else 1)


def _all_eqns(jaxpr):
    for e in jaxpr.eqns:
        yield e
        for sub in _subjaxprs(e):
            yield from _all_eqns(sub)


def _subjaxprs(eqn):
    for p in eqn.params.values():
        for j in (p if isinstance(p, (tuple, list)) else (p,)):
            if isinstance(j, jcore.ClosedJaxpr):
                yield j.jaxpr
            elif isinstance(j, jcore.Jaxpr):
                yield j


def count(jaxpr, trips: Callable[[str, int], int], by_kind: Dict[str, int], mult: int = 1) -> int:
    """Matmul FLOPs of ``jaxpr`` (times ``mult``); ``by_kind`` accumulates the while-loop bodies' share."""
    total = 0
    for e in jaxpr.eqns:
        name = e.primitive.name
        if name == "dot_general":
            total += mult * dot_flops(e)
        elif name == "scan":
            total += count(e.params["jaxpr"].jaxpr, trips, by_kind, mult * e.params["length"])
        elif name == "while":
            kind, bound = while_kind(e)
            n = trips(kind, bound)
            sub = count(e.params["body_jaxpr"].jaxpr, trips, by_kind, mult * n)
            sub += count(e.params["cond_jaxpr"].jaxpr, trips, by_kind, mult * (n + 1))
            by_kind[kind] = by_kind.get(kind, 0) + sub
            total += sub
        elif name == "cond":
            total += max(count(b.jaxpr, trips, by_kind, mult) for b in e.params["branches"])
        else:
            for sub in _subjaxprs(e):
                total += count(sub, trips, by_kind, mult)
    return total


def matmul_flops(fn, *args, trips: Callable[[str, int], int] = lambda kind, bound: bound or 1) -> dict:
    """``{"total": FLOPs, "<while kind>": FLOPs inside those loops}`` of ``fn(*args)``."""
    by_kind: Dict[str, int] = {}
    total = count(jax.make_jaxpr(fn)(*args).jaxpr, trips, by_kind)
    return {"total": total, **by_kind}
