"""The package's shape at one or more commits: modules and lines per layer, import cycles, upward imports,
files over 400 lines (docs/architecture.md names the layers).

    python bench/layout.py [REV ...]      (default: HEAD; writes bench/results/layout.json)

Every ``import``/``from`` of a ``bremen`` module counts, at module level or inside a function (a
function-level import is still a dependency; it only hides a cycle from the interpreter). A cycle is a
strongly connected component of more than one module. An upward import goes from a module to one of a
higher layer. Lines are physical lines. The files are read with ``git show REV:path``, so the working
tree is not touched.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The layers, top first: a module may import its own layer and the ones below. Keys are module-name
# prefixes, the longest match wins.
LAYERS = [
    ("cli", ["bremen.cli"]),
    ("sweep/analysis", ["bremen.sweep", "bremen.analysis"]),
    ("experiment", ["bremen.experiment", "bremen.build", "bremen.config", "bremen.flags"]),
    ("run", ["bremen.loops", "bremen.run"]),
    ("learners", ["bremen.learners"]),
    ("algos/models", ["bremen.algos", "bremen.models"]),
    ("data/tasks/io", ["bremen.data", "bremen.tasks", "bremen.io", "bremen.evaluation", "bremen.seeds"]),
    ("base", ["bremen.errors", "bremen"]),
]


def layer_of(module: str) -> tuple[int, str]:
    best = None
    for rank, (name, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[2]):
                best = (len(LAYERS) - rank, name, len(p))
    return best[:2] if best else (0, "?")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def modules_at(rev: str) -> dict[str, str]:
    files = [f for f in git("ls-tree", "-r", "--name-only", rev, "bremen").split() if f.endswith(".py")]
    out = {}
    for f in files:
        name = f[:-3].replace("/", ".")
        name = name[: -len(".__init__")] if name.endswith(".__init__") else name
        out[name] = git("show", f"{rev}:{f}")
    return out


def imports_of(name: str, source: str, known: set[str]) -> set[str]:
    """The bremen modules ``name`` imports (``from bremen.x import y`` counts bremen.x.y when that is a module)."""
    package = name if name + ".__init__" in known else name.rsplit(".", 1)[0]
    deps = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            deps |= {a.name for a in node.names if a.name.startswith("bremen")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if not base.startswith("bremen"):
                continue
            for a in node.names:
                deps.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return {d for d in deps if d in known and d != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layout(rev: str) -> dict:
    mods = modules_at(rev)
    known = set(mods) | {m + ".__init__" for m in mods if any(k.startswith(m + ".") for k in mods)}
    graph = {m: imports_of(m, src, known) for m, src in mods.items()}
    per_layer = defaultdict(lambda: {"modules": 0, "lines": 0})
    lines = {m: src.count("\n") for m, src in mods.items()}
    for m in mods:
        entry = per_layer[layer_of(m)[1]]
        entry["modules"] += 1
        entry["lines"] += lines[m]
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                    if layer_of(d)[0] > layer_of(m)[0] and layer_of(m)[1] != "?")
    return {
        "rev": git("rev-parse", "--short", rev).strip(),
        "modules": len(mods),
        "lines": sum(lines.values()),
        "per_layer": {name: dict(per_layer[name]) for name, _ in LAYERS if name in per_layer},
        "import_cycles": cycles(graph),
        "upward_imports": upward,
        "files_over_400_lines": {m: n for m, n in sorted(lines.items()) if n > 400},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("revs", nargs="*", default=["HEAD"])
    p.add_argument("--out", default=str(ROOT / "bench/results/layout.json"))
    args = p.parse_args()
    results = [layout(r) for r in args.revs]
    for r in results:
        print(f"{r['rev']}: {r['modules']} modules, {r['lines']} lines; cycles {len(r['import_cycles'])}, upward "
              f"imports {len(r['upward_imports'])}, files over 400 lines {len(r['files_over_400_lines'])}")
        for name, e in r["per_layer"].items():
            print(f"  {name:<16}{e['modules']:>4} modules {e['lines']:>6} lines")
        for u in r["upward_imports"]:
            print(f"  up: {u}")
        for c in r["import_cycles"]:
            print(f"  cycle: {' <-> '.join(c)}")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
