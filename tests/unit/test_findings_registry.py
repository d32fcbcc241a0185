"""Every registered finding code is emitted by some path in src/ and asserted by some test;
a Finding's message is rendered from its code's template and needs exactly its parameters."""

import re
from pathlib import Path

import pytest

from sigchain.findings import CODES, TEMPLATES, Finding, template_params

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "sigchain"
TESTS = ROOT / "tests"
THIS = Path(__file__).resolve()


def _literals(paths: list[Path]) -> set[str]:
    """The quoted code strings appearing in the files."""
    text = "\n".join(p.read_text() for p in paths)
    return {m.group(2) for m in re.finditer(r"([\"'])([A-Z0-9_]+)\1", text)} & set(CODES)


def test_every_code_is_emitted_by_some_path() -> None:
    sources = [p for p in SRC.rglob("*.py") if p != SRC / "findings.py"]
    missing = sorted(set(CODES) - _literals(sources))
    assert not missing, f"registered but never emitted: {missing}"


def test_every_code_is_asserted_by_some_test() -> None:
    tests = [p for p in TESTS.rglob("*.py") if p.resolve() != THIS]
    missing = sorted(set(CODES) - _literals(tests))
    assert not missing, f"registered but asserted by no test: {missing}"


def test_every_code_has_a_template() -> None:
    assert set(TEMPLATES) == set(CODES)


def test_message_is_rendered_from_the_parameters() -> None:
    f = Finding("RRSIG_EXPIRED", {"algorithm": 13, "tag": 4711, "expiration": 1_800_000_000},
                "www.example.", "A")
    assert f.message == "RRSIG 13/4711 expired at 2027-01-15 08:00:00 UTC"
    d = f.to_dict()
    assert d["params"] == {"algorithm": 13, "tag": 4711, "expiration": 1_800_000_000}
    assert d["message"] == f.message and d["ede"] == 7
    listed = Finding("ALGORITHM_UNSUPPORTED", {"source": "DS", "algorithms": [5, 7], "zone": "x."})
    assert listed.message.startswith("DS algorithm(s) 5, 7 for x. cannot be validated")


@pytest.mark.parametrize("params", [
    {"algorithm": 13, "tag": 4711},  # missing
    {"algorithm": 13, "tag": 4711, "expiration": 1, "now": 2},  # unknown
    {"algorithm": 13, "tag": 4711, "expiration": 1.5},  # not a plain JSON value of ours
    {"algorithm": 13, "tag": 4711, "expiration": {"at": 1}},
])
def test_wrong_parameters_are_refused(params: dict) -> None:
    with pytest.raises(ValueError, match="RRSIG_EXPIRED"):
        Finding("RRSIG_EXPIRED", params)


def test_unregistered_code_is_refused() -> None:
    with pytest.raises(ValueError, match="unregistered"):
        Finding("NO_SUCH_CODE", {})


def test_template_parameters() -> None:
    assert template_params("DS_SHA1_IGNORED") == {"source", "tag", "algorithm"}
    assert template_params("NSEC_AND_NSEC3") == frozenset()

