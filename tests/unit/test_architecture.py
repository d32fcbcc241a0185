"""shared/DESIGN.md: core/ is pure — no I/O, no clock, no upward imports."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "sigchain"
FORBIDDEN_IN_CORE = {"socket", "asyncio", "time", "selectors", "subprocess", "os", "threading"}
UPWARD = ("sigchain.edge", "sigchain.services", "sigchain.cli", "sigchain.clock")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_core_is_pure() -> None:
    bad = []
    for path in sorted((SRC / "core").rglob("*.py")):
        for mod in _imports(path):
            if mod.split(".")[0] in FORBIDDEN_IN_CORE or mod.startswith(UPWARD):
                bad.append(f"{path.relative_to(SRC)} imports {mod}")
    assert not bad, bad


def test_model_imports_nothing_above_it() -> None:
    bad = []
    for path in sorted((SRC / "model").rglob("*.py")):
        for mod in _imports(path):
            if mod.startswith(("sigchain.core",) + UPWARD):
                bad.append(f"{path.relative_to(SRC)} imports {mod}")
    assert not bad, bad


CORE_PACKAGES = sorted(p.name for p in (SRC / "core").iterdir() if (p / "__init__.py").exists())


def _core_package_graph() -> dict[str, set[str]]:
    """Which core packages each core package imports (itself left out)."""
    graph: dict[str, set[str]] = {pkg: set() for pkg in CORE_PACKAGES}
    for pkg in CORE_PACKAGES:
        for path in (SRC / "core" / pkg).rglob("*.py"):
            for mod in _imports(path):
                parts = mod.split(".")
                if parts[:2] == ["sigchain", "core"] and len(parts) > 2 and parts[2] != pkg:
                    graph[pkg].add(parts[2])
    return graph


def test_core_is_packages_by_domain_each_saying_what_it_owns() -> None:
    loose = [p.name for p in (SRC / "core").glob("*.py") if p.name != "__init__.py"]
    assert not loose, f"core/ modules outside a domain package: {loose}"
    assert {"dnssec", "zone", "sign", "verify", "validate", "resolve", "serve", "lab", "rollover"} <= set(CORE_PACKAGES)
    for pkg in CORE_PACKAGES:
        doc = ast.get_docstring(ast.parse((SRC / "core" / pkg / "__init__.py").read_text()))
        assert doc and len(doc) > 20, f"core/{pkg}/__init__.py needs a docstring saying what it owns"


def _find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A path that comes back to where it started, or None when the graph is acyclic."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for dep in sorted(graph.get(node, ())):
            found = visit(dep, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for node in sorted(graph):
        found = visit(node, [])
        if found:
            return found
    return None


def test_circle_finder() -> None:
    assert _find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_core_packages_import_each_other_without_circles() -> None:
    graph = _core_package_graph()
    unknown = {m for deps in graph.values() for m in deps} - set(graph)
    assert not unknown, f"imports of sigchain.core.X where X is not a package: {unknown}"
    circle = _find_circle(graph)
    assert circle is None, "circle: " + " -> ".join(circle or [])
    # The two foundations stay at the bottom: zone imports no other core package,
    # dnssec at most zone.
    assert graph["zone"] == set() and graph["dnssec"] <= {"zone"}, graph
