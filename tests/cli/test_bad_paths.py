"""Every command, given paths it cannot read or write: one line, the documented exit code
(2 for input that is missing or not usable, 3 for output that cannot be written), never a
traceback; with --json the same error as JSON on stdout, the exit code unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ZONE, sc
from tests.zonetools import keygen

NOT_DIR = "afile/sub"  # below a regular file: no one (root included) can create or read it

CASES = [
    (["keygen", "example.test", "--role", "ksk", "--dir", NOT_DIR], 3, True),
    (["sign", EXAMPLE_ZONE, "--keys", "keys", "-o", "missing-dir/x.signed"], 3, True),
    (["sign", EXAMPLE_ZONE, "--keys", "keys", "-o", f"{NOT_DIR}/x.signed"], 3, True),
    (["sign", EXAMPLE_ZONE, "--keys", "keys", "-o", "."], 3, True),
    (["sign", "missing.zone", "--keys", "keys"], 2, True),
    (["sign", EXAMPLE_ZONE, "--keys", "missing-keys", "-o", "x.signed"], 2, True),
    (["verify", "missing.signed"], 2, True),
    (["verify", f"{NOT_DIR}/x.signed"], 2, True),
    (["ds", "Kmissing.+013+00001"], 2, True),
    (["ds", "--zone", f"{NOT_DIR}/x.signed"], 2, True),
    (["lab", "status", "--dir", NOT_DIR], 2, True),
    (["lab", "up", "--dry-run", "--dir", NOT_DIR], 2, True),
    (["serve", "--zone", "example.test=missing.signed", "--listen", "127.0.0.1#5399"], 2, False),
    (["trace", "--anchor", "missing.anchor", "www.example.test", "A"], 2, True),
]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "afile").write_text("not a directory\n")
    keygen(tmp_path / "keys", "example.test", "ksk")
    return tmp_path


@pytest.mark.parametrize("args, code, has_json", CASES, ids=lambda v: str(v)[:40])
def test_bad_paths_one_line_and_the_documented_exit(workdir: Path, args: list[str], code: int,
                                                    has_json: bool) -> None:
    proc = sc(*args, cwd=workdir)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("sigchain: error: ")
    if has_json:
        out = sc(*args, "--json", cwd=workdir)
        assert out.returncode == code
        error = json.loads(out.stdout)["error"]
        assert error["exit"] == code and error["message"] in proc.stderr
        assert error["code"] == {2: "bad-input", 3: "operational"}[code]
