"""`sigchain sign` keeps a signed input's denial unless asked, and refuses a signature window
or an output it cannot use before doing any work."""

from __future__ import annotations

import time
from pathlib import Path

import dns.name
import pytest
from dns.rdatatype import RdataType

from tests.conftest import EXAMPLE_ZONE, sc
from tests.zonetools import load, rdataset

ORIGIN = dns.name.from_text("example.test.")


def _nsec3(path: Path) -> tuple[int, bytes, set[int]]:
    """(iterations, salt, NSEC3 flags seen) of a signed zone."""
    nodes = load(path).nodes
    param = rdataset(nodes, ORIGIN, RdataType.NSEC3PARAM)[0]
    flags = {rd.flags for rdatasets in nodes.values() for rds in rdatasets
             if rds.rdtype == RdataType.NSEC3 for rd in rds}
    return param.iterations, param.salt, flags


def test_resigning_keeps_the_inputs_nsec3_parameters(keys: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", first, "--nsec3", "--salt", "ABCD",
       "--iterations", "1", "--opt-out", check=True)
    again = sc("sign", first, "--keys", keys, "-o", second, check=True)
    assert _nsec3(second) == (1, bytes.fromhex("ABCD"), {1})
    assert " NSEC " not in second.read_text() and "changes" not in again.stderr
    # A field given changes only that field, and says so.
    third = tmp_path / "third"
    changed = sc("sign", second, "--keys", keys, "-o", third, "--iterations", "0", check=True)
    assert _nsec3(third) == (0, bytes.fromhex("ABCD"), {1})
    assert "changes from the input's NSEC3 (iterations 1" in changed.stderr
    assert sc("verify", third).returncode == 0


def test_kept_iterations_above_the_limit_are_refused_with_the_way_out(keys: Path,
                                                                     tmp_path: Path) -> None:
    many, again = tmp_path / "many", tmp_path / "again"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", many, "--nsec3", "--iterations", "200",
       "--force", check=True)
    refused = sc("sign", many, "--keys", keys, "-o", again)
    assert refused.returncode == 4 and "kept from the input's NSEC3 chain" in refused.stderr
    assert not again.exists()
    sc("sign", many, "--keys", keys, "-o", again, "--iterations", "0", check=True)
    assert _nsec3(again)[0] == 0


def test_changing_the_denial_is_asked_for_and_warned(keys: Path, tmp_path: Path) -> None:
    nsec, nsec3, back = tmp_path / "nsec", tmp_path / "nsec3", tmp_path / "back"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", nsec, check=True)
    kept = sc("sign", nsec, "--keys", keys, "-o", back, check=True)
    assert "NSEC3" not in back.read_text() and "warning" not in kept.stderr
    to3 = sc("sign", nsec, "--keys", keys, "-o", nsec3, "--nsec3", check=True)
    assert "changes from the input's NSEC to NSEC3" in to3.stderr
    assert _nsec3(nsec3) == (0, b"", {0})
    to1 = sc("sign", nsec3, "--keys", keys, "-o", back, "--nsec", check=True)
    assert "changes from the input's NSEC3 (iterations 0, salt -, opt-out no) to NSEC" in to1.stderr
    assert "NSEC3" not in back.read_text()
    both = sc("sign", nsec3, "--keys", keys, "-o", back, "--nsec", "--nsec3")
    assert both.returncode == 2 and "Traceback" not in both.stderr
    salt_on_nsec = sc("sign", nsec, "--keys", keys, "-o", back, "--salt", "AB")
    assert salt_on_nsec.returncode == 2 and "need NSEC3" in salt_on_nsec.stderr


@pytest.mark.parametrize("window, why", [
    (["--inception", "now+1d"], "is in the future"),
    (["--inception", "now-30d", "--validity", "14d"], "is already past"),
    (["--inception", "now-10d", "--validity", "1w4d", "--jitter", "2d"], "with --jitter"),
])
def test_window_not_valid_now_is_refused_before_signing(keys: Path, tmp_path: Path,
                                                        window: list[str], why: str) -> None:
    out = tmp_path / "s"
    proc = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, *window)
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.count("\n") == 1 and why in proc.stderr and "--force" in proc.stderr
    assert "signature window not valid now" in proc.stderr and "UTC" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".sigchain-*"))


def test_window_refusal_comes_before_reading_the_zone(keys: Path, tmp_path: Path) -> None:
    # Refused up front: the zone is never read (a missing file would be exit 2 otherwise).
    proc = sc("sign", tmp_path / "missing.zone", "--keys", keys, "--inception", "now+2h")
    assert proc.returncode == 4 and "not valid now" in proc.stderr


def test_force_signs_a_future_window(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--inception", "now+1d", "--force",
       check=True)
    later = int(time.time()) + 2 * 86400
    assert sc("verify", out, "--at", later).returncode == 0
    assert sc("verify", out).returncode == 1  # not valid yet: what --force accepted


def test_output_in_a_missing_directory_is_one_line_exit_3(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "x.signed"
    proc = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "no such directory" in proc.stderr and str(out) in proc.stderr
