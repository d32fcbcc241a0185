"""`sigchain sign`: options, key timing metadata, refusals, bad input, reproducibility."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import dns.name
import pytest
from dns.rdatatype import RdataType

from sigchain.core.dnssec import keyfile, timefmt
from sigchain.edge import keystore
from tests.conftest import EXAMPLE_ZONE, sc
from tests.zonetools import keygen, load, rdataset

ORIGIN = dns.name.from_text("example.test.")


def _rrsig_tags(path: Path, owner: str, covered: int) -> set[int]:
    nodes = load(path).nodes
    return {sig.key_tag for sig in rdataset(nodes, dns.name.from_text(owner), RdataType.RRSIG, covered)}


def _dnskey_tags(path: Path) -> set[int]:
    import dns.dnssec

    return {dns.dnssec.key_id(rd) for rd in rdataset(load(path).nodes, ORIGIN, RdataType.DNSKEY)}


def _set_timing(keydir: Path, base: str, **times: int) -> None:
    """Rewrite a key's .private with BIND timing metadata (as dnssec-settime would)."""
    kp = keystore.load_pair(str(keydir / base))
    from dataclasses import replace

    from sigchain.core.dnssec import algorithms

    timing = replace(kp.timing, **times)
    (keydir / f"{base}.private").write_text(
        keyfile.private_to_text(algorithms.get(kp.algorithm), kp.private, timing)
    )


def test_deterministic_output_is_byte_identical(keys: Path, tmp_path: Path) -> None:
    outs = []
    inception = str(int(time.time()) - 3600)  # fixed for both runs
    for i in range(2):
        out = tmp_path / f"d{i}"
        sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--nsec3", "--deterministic",
           "--inception", inception, check=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", tmp_path / "x", "--deterministic").returncode == 2


def test_jitter_spreads_expirations_within_the_window(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "j"
    inception = int(time.time()) - 3600
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--inception", inception,
       "--validity", "10d", "--jitter", "2d", check=True)
    exps = {int(m) for m in re.findall(r" RRSIG \S+ \d+ \d+ \d+ (\d{14}) ", out.read_text())}
    exps_t = {timefmt.parse_timestamp14(str(e)) for e in exps}
    assert len(exps_t) > 5
    assert all(inception + 8 * 86400 <= e <= inception + 10 * 86400 for e in exps_t)


def test_default_inception_is_an_hour_ago(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    before = int(time.time())
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--jitter", "0", check=True)
    sig = rdataset(load(out).nodes, ORIGIN, RdataType.RRSIG, RdataType.SOA)[0]
    assert abs(sig.inception - (before - 3600)) <= 5
    assert sig.expiration - sig.inception == 14 * 86400


def test_published_inactive_and_deleted_keys(keys: Path, tmp_path: Path) -> None:
    now = int(time.time())
    standby = keygen(keys, "example.test", "zsk")  # published, activates in a week
    _set_timing(keys, standby, publish=now - 60, activate=now + 7 * 86400)
    retired = keygen(keys, "example.test", "zsk")  # still published, no longer signing
    _set_timing(keys, retired, publish=now - 86400, activate=now - 86400, inactive=now - 60)
    gone = keygen(keys, "example.test", "zsk")  # deleted: not even published
    _set_timing(keys, gone, publish=now - 86400, activate=now - 86400, inactive=now - 120, delete=now - 60)
    future = keygen(keys, "example.test", "zsk")  # not yet published
    _set_timing(keys, future, publish=now + 86400, activate=now + 2 * 86400)
    out = tmp_path / "s"
    summary = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, check=True).stdout.splitlines()
    assert summary[2] == ("algorithm ECDSAP256SHA256: KSKs: 1 active, 0 stand-by, 0 revoked; "
                          "ZSKs: 1 active, 2 stand-by, 0 revoked")
    tag = lambda base: int(base.rsplit("+", 1)[1])  # noqa: E731
    published = _dnskey_tags(out)
    assert tag(standby) in published and tag(retired) in published
    assert tag(gone) not in published and tag(future) not in published
    signers = _rrsig_tags(out, "www.example.test.", RdataType.A)
    assert tag(standby) not in signers and tag(retired) not in signers
    assert len(signers) == 1


def test_ksk_without_zsk_acts_as_csk(tmp_path: Path) -> None:
    keydir = tmp_path / "k"
    ksk = keygen(keydir, "example.test", "ksk")
    out = tmp_path / "s"
    sc("sign", EXAMPLE_ZONE, "--keys", keydir, "-o", out, check=True)
    tag = int(ksk.rsplit("+", 1)[1])
    assert _rrsig_tags(out, "www.example.test.", RdataType.A) == {tag}
    assert _rrsig_tags(out, "example.test.", RdataType.DNSKEY) == {tag}


def test_every_algorithm_signs_every_rrset(tmp_path: Path) -> None:
    keydir = tmp_path / "k"
    for alg in ("ecdsap256sha256", "ed25519"):
        keygen(keydir, "example.test", "ksk", alg)
        keygen(keydir, "example.test", "zsk", alg)
    out = tmp_path / "s"
    sc("sign", EXAMPLE_ZONE, "--keys", keydir, "-o", out, check=True)
    nodes = load(out).nodes
    algs = {s.algorithm for s in rdataset(nodes, dns.name.from_text("sub.example.test."), RdataType.RRSIG, RdataType.DS)}
    assert algs == {13, 15}


def test_cds_and_cdnskey_for_active_ksk(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--cds", check=True)
    ksk_tags = {int(p.stem.rsplit("+", 1)[1]) for p in keys.glob("*.key") if " 257 " in p.read_text()}
    nodes = load(out).nodes
    assert {rd.key_tag for rd in rdataset(nodes, ORIGIN, RdataType.CDS)} == ksk_tags
    assert len(rdataset(nodes, ORIGIN, RdataType.CDNSKEY)) == 1
    assert _rrsig_tags(out, "example.test.", RdataType.CDS) == ksk_tags
    assert sc("ds", "--zone", out, "--cds").stdout.splitlines()[1].split()[2] == "CDS"


@pytest.mark.parametrize(("policy", "expect"), [("keep", 2026112901), ("increment", 2026112902)])
def test_serial_policies(keys: Path, tmp_path: Path, policy: str, expect: int) -> None:
    out = tmp_path / "s"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--serial", policy, check=True)
    assert rdataset(load(out).nodes, ORIGIN, RdataType.SOA)[0].serial == expect


def test_unixtime_serial_never_goes_backwards(keys: Path, tmp_path: Path) -> None:
    zone = tmp_path / "z"
    zone.write_text(EXAMPLE_ZONE.read_text().replace("2026112901", "1"))
    out = tmp_path / "s"
    sc("sign", zone, "--keys", keys, "-o", out, "--serial", "unixtime", check=True)
    now = int(time.time())
    assert abs(rdataset(load(out).nodes, ORIGIN, RdataType.SOA)[0].serial - now) < 10
    ahead = now + 10**6  # a serial already past the clock: increment instead
    zone.write_text(EXAMPLE_ZONE.read_text().replace("2026112901", str(ahead)))
    sc("sign", zone, "--keys", keys, "-o", out, "--serial", "unixtime", check=True)
    assert rdataset(load(out).nodes, ORIGIN, RdataType.SOA)[0].serial == ahead + 1


def test_resigning_a_signed_zone_drops_old_dnssec_records(keys: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", first, "--nsec3", check=True)
    second = tmp_path / "second"
    sc("sign", first, "--keys", keys, "-o", second, "--nsec", check=True)  # now NSEC
    text = second.read_text()
    assert " NSEC3 " not in text and "NSEC3PARAM" not in text
    assert sc("verify", second, check=True).returncode == 0


def test_origin_from_option_then_origin_directive_then_file_name(keys: Path, tmp_path: Path) -> None:
    body = "\n".join(line for line in EXAMPLE_ZONE.read_text().splitlines() if not line.startswith("$ORIGIN"))
    named = tmp_path / "example.test"
    named.write_text(body + "\n")
    sc("sign", named, "--keys", keys, "-o", tmp_path / "a", check=True)  # origin = file name
    other = tmp_path / "zonefile"
    other.write_text(body + "\n")
    assert sc("sign", other, "--keys", keys, "-o", tmp_path / "b").returncode == 2
    sc("sign", other, "--origin", "example.test", "--keys", keys, "-o", tmp_path / "b", check=True)


def test_iteration_limit_and_warnings(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    refused = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--nsec3", "--iterations", "200")
    assert refused.returncode == 4 and "RFC 9276" in refused.stderr and not out.exists()
    forced = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--nsec3", "--iterations", "200", "--force")
    assert forced.returncode == 0 and "warning" in forced.stderr
    assert rdataset(load(out).nodes, ORIGIN, RdataType.NSEC3PARAM)[0].iterations == 200


def test_json_summary(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    summary = json.loads(sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--json", check=True).stdout)
    assert summary["zone"] == "example.test." and summary["verified"] is True
    assert summary["signatures"] == sum(k["signatures"] for k in summary["keys"]) > 20
    assert "PrivateKey" not in json.dumps(summary)


def test_resign_time_is_earliest_expiration_less_a_quarter_of_validity(keys: Path, tmp_path: Path) -> None:
    """As dnssec-signzone's default cycle interval: re-sign validity/4 before the first RRSIG
    expires. With jitter the earliest expiration is that of some RRset, not inception+validity."""
    out = tmp_path / "s"
    summary = json.loads(sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--inception", "now-1h",
                            "--validity", "8d", "--jitter", "2d", "--json", check=True).stdout)
    nodes = load(out).nodes
    expirations = [sig.expiration for rdatasets in nodes.values() for rds in rdatasets
                   if rds.rdtype == RdataType.RRSIG for sig in rds]
    assert len(set(expirations)) > 1  # the jitter spread them
    assert summary["resign_at"] == min(expirations) - 2 * 86400
    text = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--deterministic",
              "--inception", "20261201000000", "--validity", "30d", check=True).stdout.splitlines()
    due = timefmt.parse_timestamp14("20261201000000") + 30 * 86400 - 30 * 86400 // 4
    assert text[0] == str(out)
    assert text[-1] == f"re-sign by {timefmt.format_utc(due)} ({due})"


# --- bad input: exit 2, one message with file (and line), nothing written -------------------

def _assert_bad_input(proc, out: Path, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for f in fragments:
        assert f in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("body", "line", "what"), [
    ("www IN A 192.0.2.999\n", 5, "www"),
    ("www IN BOGUSTYPE 1\n", 5, "BOGUSTYPE"),
    ("mail IN MX ten mail\n", 5, ""),
])
def test_unparseable_zone_names_file_and_line(keys: Path, tmp_path: Path, body: str, line: int, what: str) -> None:
    zone = tmp_path / "bad.zone"
    zone.write_text("$ORIGIN example.test.\n$TTL 300\n@ SOA ns hostmaster 1 2 3 4 5\n@ NS ns\n" + body +
                    "ns A 192.0.2.1\n")
    out = tmp_path / "out"
    proc = sc("sign", zone, "--keys", keys, "-o", out)
    _assert_bad_input(proc, out, f"{zone}:{line}:")
    assert not out.exists()


def test_missing_soa(keys: Path, tmp_path: Path) -> None:
    zone = tmp_path / "nosoa.zone"
    zone.write_text("$ORIGIN example.test.\n$TTL 300\n@ NS ns\nns A 192.0.2.1\n")
    out = tmp_path / "out"
    _assert_bad_input(sc("sign", zone, "--keys", keys, "-o", out), out, str(zone), "SOA")
    assert not out.exists()


def test_existing_output_is_not_truncated_on_bad_input(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("previous good version\n")
    zone = tmp_path / "bad.zone"
    zone.write_text("$ORIGIN example.test.\n@ 300 SOA ns hostmaster 1 2 3 4 5\n@ 300 NS ns\nns 300 A x\n")
    assert sc("sign", zone, "--keys", keys, "-o", out).returncode == 2
    assert out.read_text() == "previous good version\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".sigchain-")] == []


def test_key_for_another_zone(tmp_path: Path) -> None:
    keydir = tmp_path / "k"
    other = keygen(keydir, "other.test", "ksk")
    out = tmp_path / "out"
    proc = sc("sign", EXAMPLE_ZONE, "--keys", keydir, "-o", out)
    _assert_bad_input(proc, out, "no keys for zone example.test.", "other.test.")
    # A key file named for this zone whose DNSKEY belongs to another zone:
    for ext in (".key", ".private"):
        shutil.copy(keydir / f"{other}{ext}", keydir / f"Kexample.test.+013+00001{ext}")
    proc = sc("sign", EXAMPLE_ZONE, "--keys", keydir, "-o", out)
    _assert_bad_input(proc, out, "Kexample.test.+013+00001.key", "other.test.")
    assert not out.exists()


def test_unreadable_or_corrupt_private_key(keys: Path, tmp_path: Path) -> None:
    private = next(keys.glob("*.private"))
    lines = private.read_text().splitlines()
    lines[2] = "PrivateKey: not*base64"
    private.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    _assert_bad_input(sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out), out, f"{private}:3:", "base64")
    os.remove(private)
    _assert_bad_input(sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out), out, str(private))
    assert not out.exists()


def test_missing_zone_file_and_key_dir(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _assert_bad_input(sc("sign", tmp_path / "nope.zone", "--keys", keys, "-o", out), out, "nope.zone")
    _assert_bad_input(sc("sign", EXAMPLE_ZONE, "--keys", tmp_path / "nokeys", "-o", out), out, "nokeys")
    assert not out.exists()
