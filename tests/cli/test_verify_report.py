"""`sigchain verify` sums up: findings grouped by code with counts and a few examples (every
one with --all and in --json), totals that say what was checked and what was valid."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import dns.zone
import pytest
from dns.rdatatype import RdataType

from tests.conftest import EXAMPLE_ZONE, need, sc, sigchain_cmd


def _signed(keys: Path, tmp_path: Path) -> Path:
    out = tmp_path / "signed"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--nsec3", "--salt", "AB", check=True)
    return out


def _rrsigs(path: Path) -> int:
    """How many RRSIGs the file holds (read by dnspython, not by sigchain's reader)."""
    zone = dns.zone.from_file(str(path), "example.test.", relativize=False)
    return sum(len(rds) for _, rds in zone.iterate_rdatasets() if rds.rdtype == RdataType.RRSIG)


def test_expired_zone_is_grouped_by_code_with_counts(keys: Path, tmp_path: Path) -> None:
    signed = _signed(keys, tmp_path)
    n = _rrsigs(signed)
    later = int(time.time()) + 60 * 86400
    proc = sc("verify", signed, "--at", later)
    assert proc.returncode == 1
    err = proc.stderr.splitlines()
    assert f"ERROR RRSIG_EXPIRED ({n}): an RRSIG has expired (RFC 4035 §5.3.1)" in err
    examples = [line for line in err if line.startswith("  RRSIG_EXPIRED ")]
    assert len(examples) == 3 and " UTC" in examples[0]
    assert f"  ... and {n - 3} more RRSIG_EXPIRED (--all lists every one)" in err
    assert "WARNING NSEC3_SALT_PRESENT (1): NSEC3 salt is not empty (RFC 9276 §3.1)" in err
    assert err.index(f"ERROR RRSIG_EXPIRED ({n}): an RRSIG has expired (RFC 4035 §5.3.1)") == 0
    assert proc.stdout.startswith(f"zone example.test. FAILED: {n} errors of 1 kind, 1 warning; "
                                  f"{n} signatures checked, 0 valid ({n} cryptographically "
                                  "correct); at ")
    every = sc("verify", signed, "--at", later, "--all").stderr.splitlines()
    assert len([line for line in every if line.startswith("  RRSIG_EXPIRED ")]) == n
    data = json.loads(sc("verify", signed, "--at", later, "--json").stdout)
    assert data["counts"] == {"RRSIG_EXPIRED": n, "NSEC3_SALT_PRESENT": 1}
    assert len(data["findings"]) == n + 1 and data["errors"] == n and data["warnings"] == 1
    assert data["signatures_checked"] == n and data["signatures_valid"] == 0
    assert data["findings"][0]["params"]["expiration"] < later  # epoch seconds in JSON


def test_a_good_zone_says_every_signature_is_valid(keys: Path, tmp_path: Path) -> None:
    signed = _signed(keys, tmp_path)
    n = _rrsigs(signed)
    proc = sc("verify", signed)
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"zone example.test. verified: no errors, 1 warning; "
                                  f"{n} signatures checked, {n} valid; at ")
    assert re.search(r"; at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC;", proc.stdout)


def test_cname_and_other_data_is_a_finding_as_dnssec_verify_refuses_it(keys: Path, tmp_path: Path) -> None:
    """A signed zone where a CNAME name also has an A record: the readers refuse it for
    signing (file:line, exit 2); `verify` reports it as a finding, as dnssec-verify fails."""
    signed = _signed(keys, tmp_path)
    with signed.open("a") as f:
        f.write("web.example.test. 3600 IN A 192.0.2.77\n")
    proc = sc("verify", signed, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = [f for f in json.loads(proc.stdout)["findings"] if f["code"] == "CNAME_AND_OTHER_DATA"]
    assert [(f["name"], f["type"], f["params"]) for f in found] == [
        ("web.example.test.", "CNAME", {"types": ["A"]})]
    assert "CNAME and other data: the name also has A" in sc("verify", signed, "--all").stderr
    peer = subprocess.run([need("dnssec-verify"), "-o", "example.test.", str(signed)],
                          capture_output=True, text=True, timeout=60)
    assert peer.returncode != 0 and "CNAME and other data" in peer.stdout + peer.stderr
    assert sc("sign", signed, "--keys", keys, "-o", tmp_path / "again").returncode == 2


def test_what_the_reader_warns_of_is_shown_and_counted(keys: Path, tmp_path: Path) -> None:
    """Data the reader skipped (outside the zone) or took another way (an RRset's records with
    different TTLs: the lowest) is a warning, shown as named-checkzone shows it; counted,
    and listed under `load_warnings` in --json; it does not fail the zone."""
    signed = _signed(keys, tmp_path)
    lines = signed.read_text().splitlines()
    (at,) = [i for i, x in enumerate(lines) if x.startswith("www.example.test. ") and " IN A " in x]
    head = lines[at].split()
    lines.insert(at + 1, f"www.example.test. {int(head[1]) * 2} IN A 192.0.2.201")
    lines.append("outside.example.org. 300 IN A 192.0.2.9")
    signed.write_text("\n".join(lines) + "\n")
    proc = sc("verify", signed)
    assert proc.returncode == 1  # the RRset's signature no longer covers it: the one error
    assert (f"sigchain: warning: {signed}: records with another TTL than the rest of their RRset "
            f"(RFC 2181 §5.2), each RRset given its lowest: line {at + 2} www.example.test. A TTL "
            f"{int(head[1]) * 2}, the RRset's {head[1]}") in proc.stderr.splitlines()
    assert (f"sigchain: warning: {signed}: ignoring out-of-zone data: line {len(lines)} "
            "outside.example.org.") in proc.stderr.splitlines()
    assert " 3 warnings; " in proc.stdout  # NSEC3_SALT_PRESENT and the reader's two
    data = json.loads(sc("verify", signed, "--json").stdout)
    assert data["warnings"] == 3 and len(data["load_warnings"]) == 2


@pytest.mark.parametrize("args", [[], ["--json"]])
def test_a_reader_gone_ends_the_command_quietly_with_141(keys: Path, tmp_path: Path,
                                                         args: list[str]) -> None:
    """`sigchain verify … | head -0`: no 'Broken pipe' error nor traceback, and exit 141 (as
    a C tool killed by SIGPIPE), not 1 ('errors found') from click's own handling."""
    signed = _signed(keys, tmp_path)
    gone, w = os.pipe()
    os.close(gone)
    try:
        proc = subprocess.run([*sigchain_cmd(), "verify", str(signed), *args], stdout=w,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert proc.returncode == 141, proc.stderr
    assert "Broken pipe" not in proc.stderr and "Traceback" not in proc.stderr
    assert "error" not in proc.stderr.lower()  # (the findings, on stderr, are still shown)


def test_a_broken_pipe_to_a_worker_is_an_error_not_a_quiet_exit() -> None:
    """A BrokenPipeError whose pipe is not stdout (a worker process that died) is reported,
    exit 3, not taken for a reader of the output that went away."""
    from sigchain.cli.common import handle_errors

    @handle_errors
    def command() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(SystemExit) as exited:
        command()
    assert exited.value.code == 3
