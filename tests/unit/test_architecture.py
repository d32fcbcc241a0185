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
