"""`--json` a script can trust: every reporting command has it, errors are JSON on stdout with
the exit code unchanged, and success and failure carry the same keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ZONE, sc


def _json(*args: object, code: int, cwd: Path | None = None) -> dict:
    proc = sc(*args, "--json", cwd=cwd)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


def test_sign_same_keys_on_success_and_failure(keys: Path, tmp_path: Path) -> None:
    ok = _json("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "s", code=0)
    refused = _json("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "t",
                    "--inception", "now+1d", code=4)
    assert set(ok) == set(refused) and ok["error"] is None
    assert refused["error"]["code"] == "refused-unsafe" and refused["error"]["exit"] == 4
    assert all(refused[k] is None for k in refused if k != "error")
    assert ok["verified"] is True and ok["denial"] == "nsec" and ok["nsec3"] is None
    unverified = _json("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "s", "-P", code=0)
    assert unverified["verified"] is False  # not checked, so not "verified"


def test_verify_same_keys_on_success_and_failure(keys: Path, tmp_path: Path) -> None:
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "s", check=True)
    ok = _json("verify", tmp_path / "s", code=0)
    missing = _json("verify", tmp_path / "missing", code=2)
    assert set(ok) == set(missing) and ok["error"] is None and ok["ok"] is True
    assert missing["error"]["file"] == str(tmp_path / "missing")


def test_ds_and_keygen_have_structured_json(keys: Path, tmp_path: Path) -> None:
    made = _json("keygen", "example.test", "--role", "ksk", "--dir", tmp_path / "k", code=0)
    assert made["flags"] == 257 and made["algorithm"] == 13 and made["role"] == "ksk"
    assert Path(made["files"]["key"]).exists() and made["base"].startswith("Kexample.test.+013+")
    bad = _json("keygen", "bad..name", "--role", "ksk", "--dir", tmp_path / "k", code=2)
    assert set(bad) == set(made)
    ds = _json("ds", made["files"]["key"], "--cdnskey", code=0)
    kinds = [r["type"] for r in ds["records"]]
    assert kinds == ["DS", "CDNSKEY"] and ds["records"][0]["key_tag"] == made["key_tag"]
    text = sc("ds", made["files"]["key"], check=True).stdout.split()
    assert ds["records"][0]["digest"] == text[-1] and ds["records"][0]["digest_type"] == 2
    assert set(_json("ds", tmp_path / "nokey.key", code=2)) == set(ds)


@pytest.mark.parametrize("args", [["sign", "--no-such-option"], ["verify"], ["ds", "--digest", "9"]])
def test_usage_errors_are_json_too(args: list[str]) -> None:
    data = _json(*args, code=2)
    assert data["error"]["code"] == "usage" and data["error"]["exit"] == 2


def test_sign_that_fails_its_verification_says_so(keys: Path, tmp_path: Path) -> None:
    # --force lets an expired window past the up-front check; the verification still refuses.
    args = ("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "s", "--inception", "now-30d",
            "--validity", "7d", "--force")
    data = _json(*args, code=4)
    assert data["verified"] is False and data["error"]["code"] == "verify-failed"
    assert {f["code"] for f in data["findings"]} == {"RRSIG_EXPIRED"} and len(data["findings"]) > 3
    human = sc(*args)
    assert human.returncode == 4 and not (tmp_path / "s").exists()
    lines = human.stderr.splitlines()
    assert lines[0].startswith(f"ERROR RRSIG_EXPIRED ({len(data['findings'])}): ")
    assert len(lines) == 1 + 3 + 1 + 1 and lines[-1].startswith("sigchain: error: the signed zone")


def test_lab_json_keys_on_failure_and_success(tmp_path: Path) -> None:
    from sigchain.cli.lab import DOWN_KEYS, STATUS_KEYS

    missing = _json("lab", "status", "--dir", tmp_path / "none", code=2)
    assert set(missing) == {*STATUS_KEYS, "error"} and missing["zones"] is None
    nothing = _json("lab", "down", "--dir", tmp_path / "none", code=0)
    assert set(nothing) == {*DOWN_KEYS, "error"} and nothing["error"] is None
