"""No import cycle anywhere in the package: every module can be read apart from those it imports."""

from __future__ import annotations

import ast
from pathlib import Path

import ecgjax

ROOT = Path(ecgjax.__file__).resolve().parent


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: the package modules it imports}, from the source (``ast``), lazy imports inside functions included."""
    mods = {}
    for p in root.rglob("*.py"):
        parts = p.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = p
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom):
                base = ".".join(pkg[: len(pkg) - n.level + 1] + ([n.module] if n.module else [])) if n.level else n.module
                edges[m] |= {c for c in [base] + [f"{base}.{a.name}" for a in n.names] if c in mods and c != m}
            elif isinstance(n, ast.Import):
                edges[m] |= {a.name for a in n.names if a.name in mods and a.name != m}
    return edges


def _related(a: str, b: str) -> bool:
    """A package and its own submodules (``ecgjax.study`` and ``ecgjax.study.config``) are not a cycle."""
    return a.startswith(b + ".") or b.startswith(a + ".")


def import_cycles(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs (a, b) where a imports b and b reaches a again (package <-> own submodule edges ignored)."""

    def reach(a, b, seen):
        if a == b:
            return True
        seen.add(a)
        return any(reach(c, b, seen) for c in edges[a] if c not in seen and not _related(a, c))

    return sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if not _related(a, b) and reach(b, a, set())})


def test_the_checker_finds_a_cycle():
    edges = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p": {"p.a"}, "p.d": {"p.a"}}
    assert import_cycles(edges) == [("p.a", "p.b"), ("p.a", "p.c"), ("p.b", "p.c")]
    assert import_cycles({"p.a": {"p.b"}, "p.b": set(), "p": {"p.a"}}) == []


def test_no_import_cycle_in_ecgjax():
    edges = import_graph()
    assert "ecgjax.study.pipeline" in edges and "ecgjax.study.checks" in edges["ecgjax.study.pipeline"]
    cycles = import_cycles(edges)
    assert not cycles, "modules that import each other (directly or through others): " + "; ".join(f"{a} <-> {b}" for a, b in cycles)
