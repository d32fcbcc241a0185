"""`sigchain keys run|status|ds-seen|roll` on a key directory: SQLite state, BIND timing
metadata the signer (ours and dnssec-signzone -S) selects keys by, dry runs that write nothing,
the lock, bad input, and `sign --at`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import dns.dnssec
import dns.name
import dns.zone
import pytest

from sigchain.clock import FakeClock
from sigchain.core.dnssec import keyfile, timefmt
from sigchain.edge import keystore
from sigchain.errors import OperationalError
from sigchain.model.keys import KeyTiming
from sigchain.services import keystate
from tests.conftest import need, sc

ZONE = "example.test."
T0 = timefmt.parse_timestamp14("20260101000000")  # in the past: dnssec-signzone reads the clock
DAY = 86400
ZONE_TEXT = f"""$ORIGIN {ZONE}
$TTL 300
@ SOA ns hm 1 3600 600 86400 300
@ NS ns
ns A 192.0.2.1
www A 192.0.2.2
"""
FAST = """dnskey-ttl = "1h"
max-zone-ttl = "5m"
parent-ds-ttl = "1h"
signatures-validity = "3d"
signatures-validity-dnskey = "3d"
signatures-refresh = "1d"
signatures-jitter = "1h"
purge-keys = "10d"
[[keys]]
role = "ksk"
lifetime = "60d"
[[keys]]
role = "zsk"
lifetime = "10d"
"""


def _at(t: int) -> str:
    return timefmt.format_timestamp14(t)


def _kdir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o700)
    return tmp_path / "keys"


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir()} if d.exists() else {}


def test_first_run_makes_keys_state_and_metadata_the_signers_follow(tmp_path: Path) -> None:
    kdir = _kdir(tmp_path)
    out = sc("keys", "run", ZONE, "--policy", "ksk-zsk", "--keys", kdir, "--at", _at(T0),
             "--json", check=True)
    data = json.loads(out.stdout)
    assert sorted(a["kind"] for a in data["actions"]) == ["activate", "activate", "create",
                                                          "create", "publish", "publish"]
    assert data["next_run"] == T0 + 2 * 3600 + 300  # Ipub: 5m + 1h + 1h
    assert (kdir / keystate.DB_NAME).stat().st_mode & 0o777 == 0o600
    keys = keystore.load_zone_keys(str(kdir), dns.name.from_text(ZONE))
    assert len(keys) == 2
    for kp in keys:
        assert kp.timing == KeyTiming(created=T0, publish=T0, activate=T0)
        assert os.stat(kp.source + ".private").st_mode & 0o777 == 0o600
    # dnssec-signzone -S selects them by their metadata (it reads the real clock: T0 is past).
    (tmp_path / "z.db").write_text(ZONE_TEXT)
    bind = subprocess.run([need("dnssec-signzone"), "-S", "-K", str(kdir), "-o", ZONE, "-f",
                           str(tmp_path / "z.bind"), str(tmp_path / "z.db")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert bind.returncode == 0, bind.stderr
    assert "KSKs: 1 active" in bind.stdout and "ZSKs: 1 active" in bind.stdout
    again = sc("keys", "run", ZONE, "--policy", "ksk-zsk", "--keys", kdir, "--at",
               _at(T0 + 60), check=True)
    assert "nothing to do now" in again.stdout


def test_dry_run_and_bad_policy_write_nothing(tmp_path: Path) -> None:
    kdir = _kdir(tmp_path)
    dry = sc("keys", "run", ZONE, "--policy", "default", "--keys", kdir, "--dry-run",
             "--at", _at(T0), check=True)
    assert "would do: create key" in dry.stdout and not kdir.exists()
    sc("keys", "run", ZONE, "--policy", "default", "--keys", kdir, "--at", _at(T0), check=True)
    before = _snapshot(kdir)
    sc("keys", "run", ZONE, "--policy", "ksk-zsk", "--keys", kdir, "--dry-run",
       "--at", _at(T0 + 400 * DAY), check=True)
    assert _snapshot(kdir) == before
    bad = tmp_path / "bad.toml"
    bad.write_text('dnskey-ttl = "1h"\n[[keys]]\nrole = "ksk"\nlifetime = "soon"\n')
    out = sc("keys", "run", ZONE, "--policy", bad, "--keys", kdir, "--at", _at(T0 + DAY))
    assert out.returncode == 2 and f"{bad}:4: keys[0].lifetime" in out.stderr
    assert _snapshot(kdir) == before


def test_a_second_run_waits_then_refuses(tmp_path: Path) -> None:
    kdir = _kdir(tmp_path)
    kdir.mkdir(mode=0o700)
    with keystate.locked(str(kdir)):
        with pytest.raises(OperationalError, match="another `sigchain keys` run holds the lock"):
            with keystate.locked(str(kdir), FakeClock(), wait=2):
                pass
    with keystate.locked(str(kdir), FakeClock(), wait=2):
        pass  # free again once the first has finished


def test_status_asks_for_the_ds_and_ds_seen_moves_the_roll_on(tmp_path: Path) -> None:
    kdir, policy = _kdir(tmp_path), tmp_path / "fast.toml"
    policy.write_text(FAST)
    sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at", _at(T0), check=True)
    sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at", _at(T0 + 3 * DAY),
       check=True)
    status = json.loads(sc("keys", "status", ZONE, "--keys", kdir, "--at", _at(T0 + 3 * DAY),
                           "--json", check=True).stdout)
    ksk = next(k for k in status["keys"] if k["role"] == "ksk")
    assert ksk["states"] == {"dnskey": "omnipresent", "krrsig": "omnipresent",
                             "zrrsig": "hidden", "ds": "hidden"}
    assert status["waiting"] == [
        f"waiting for DS of key {ksk['tag']} at the parent since 2026-01-04 00:00:00 UTC; run "
        f"`sigchain keys ds-seen {ZONE} --key {ksk['id']}` when it is"]
    sc("keys", "ds-seen", ZONE, "--key", ksk["tag"], "--keys", kdir, "--at",
       _at(T0 + 3 * DAY + 3600), check=True)
    sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at", _at(T0 + 4 * DAY),
       check=True)
    text = sc("keys", "status", ZONE, "--keys", kdir, "--at", _at(T0 + 4 * DAY),
              check=True).stdout
    assert f"key {ksk['tag']} (ksk, algorithm 13): dnskey=omnipresent krrsig=omnipresent " \
           "zrrsig=hidden ds=omnipresent; goal omnipresent" in text
    unknown = sc("keys", "ds-seen", ZONE, "--key", "1", "--keys", kdir)
    assert unknown.returncode == 2 and "no key 1 in the key state" in unknown.stderr


def test_roll_starts_a_successor_that_is_prepublished(tmp_path: Path) -> None:
    kdir = _kdir(tmp_path)
    sc("keys", "run", ZONE, "--policy", "ksk-zsk", "--keys", kdir, "--at", _at(T0), check=True)
    status = json.loads(sc("keys", "status", ZONE, "--keys", kdir, "--at", _at(T0 + DAY),
                           "--json", check=True).stdout)
    zsk = next(k for k in status["keys"] if k["role"] == "zsk")
    sc("keys", "roll", ZONE, "--key", zsk["tag"], "--keys", kdir, "--at", _at(T0 + DAY),
       check=True)
    data = json.loads(sc("keys", "run", ZONE, "--policy", "ksk-zsk", "--keys", kdir, "--at",
                         _at(T0 + DAY), "--json", check=True).stdout)
    assert [a["kind"] for a in data["actions"]] == ["create", "publish"]
    new = next(k for k in data["keys"] if k["predecessor"] == zsk["id"])
    timing = keystore.load_pair(str(kdir / new["base"])).timing
    assert (timing.publish, timing.activate) == (T0 + DAY, None)  # stand-by: not signing yet


def test_sign_at_reads_the_metadata_and_starts_signatures_then(tmp_path: Path) -> None:
    kdir = _kdir(tmp_path)
    sc("keys", "run", ZONE, "--policy", "ksk-zsk", "--keys", kdir, "--at", _at(T0), check=True)
    (tmp_path / "z.db").write_text(ZONE_TEXT)
    early = sc("sign", tmp_path / "z.db", "--keys", kdir, "--at", _at(T0 - DAY))
    assert early.returncode == 2 and "no active signing key" in early.stderr
    out = sc("sign", tmp_path / "z.db", "--keys", kdir, "--at", _at(T0 + DAY), "--json",
             check=True)
    assert json.loads(out.stdout)["verified"] is True
    signed = (tmp_path / "z.db.signed").read_text()
    assert f" {_at(T0 + DAY - 3600)} " in signed  # inception: --at minus an hour
    ldns = subprocess.run([need("ldns-verify-zone"), "-t", _at(T0 + DAY),
                           str(tmp_path / "z.db.signed")], capture_output=True, text=True)
    assert ldns.returncode == 0, ldns.stdout + ldns.stderr


def test_the_dnskey_rrset_gets_the_policys_dnskey_ttl(tmp_path: Path) -> None:
    """The rolls wait for the policy's dnskey-ttl, so the DNSKEY RRset must carry it. Before,
    the key files had no TTL and the signer gave the DNSKEY RRset the SOA's (here 1 day
    against 1h): caches kept an old key set 24 times longer than a roll waited for."""
    kdir, origin = _kdir(tmp_path), dns.name.from_text(ZONE)
    sc("keys", "run", ZONE, "--policy", "ksk-zsk", "--keys", kdir, "--at", _at(T0), check=True)
    assert {kp.ttl for kp in keystore.load_zone_keys(str(kdir), origin)} == {3600}
    (tmp_path / "z.db").write_text(ZONE_TEXT.replace("$TTL 300", "$TTL 86400"))
    sc("sign", tmp_path / "z.db", "--keys", kdir, "--at", _at(T0 + DAY), check=True)
    signed = dns.zone.from_file(str(tmp_path / "z.db.signed"), origin, relativize=False)
    assert signed.find_rdataset(origin, "DNSKEY").ttl == 3600
    # A dnskey-ttl changed in the policy reaches the existing keys' files at the next run.
    policy = tmp_path / "p.toml"
    policy.write_text('dnskey-ttl = "2h"\n[[keys]]\nrole = "ksk"\nlifetime = "365d"\n'
                      '[[keys]]\nrole = "zsk"\nlifetime = "90d"\n')
    before = {kp.key_tag: kp for kp in keystore.load_zone_keys(str(kdir), origin)}
    private = {p.name: p.read_bytes() for p in kdir.glob("*.private")}
    out = json.loads(sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at",
                        _at(T0 + DAY), "--json", check=True).stdout)
    assert out["actions"] == [] and len(out["written"]) == 2
    after = keystore.load_zone_keys(str(kdir), origin)
    assert {kp.ttl for kp in after} == {7200}
    assert {(kp.dnskey, kp.timing) for kp in after} == {
        (kp.dnskey, kp.timing) for kp in before.values()}
    assert {p.name: p.read_bytes() for p in kdir.glob("*.private")} == private


def test_sign_refuses_a_ttl_above_the_policys_max_zone_ttl(tmp_path: Path) -> None:
    """As BIND's dnssec-policy refuses to load such a zone: the rolls wait max-zone-ttl for
    old signatures to leave the caches, so a longer TTL would outlive the key that signed it.
    Keys not run by a policy (no key state) sign it as before."""
    kdir = _kdir(tmp_path)
    sc("keys", "run", ZONE, "--policy", "ksk-zsk", "--keys", kdir, "--at", _at(T0), check=True)
    zone = tmp_path / "z.db"
    zone.write_text(ZONE_TEXT + "long 86401 TXT x\nlonger 172800 TXT y\n")
    out = sc("sign", zone, "--keys", kdir, "--at", _at(T0 + DAY))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert (f"{zone}: TTL 172800 of longer.{ZONE} TXT exceeds the key policy's max-zone-ttl "
            "86400 (2 RRset(s) over it)") in out.stderr, out.stderr
    assert not (tmp_path / "z.db.signed").exists()
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o700)
    for f in kdir.glob("K*"):
        (loose / f.name).write_bytes(f.read_bytes())
        (loose / f.name).chmod(f.stat().st_mode & 0o777)
    sc("sign", zone, "--keys", loose, "--at", _at(T0 + DAY), check=True)


def test_sign_publishes_the_cds_digests_and_cdnskey_the_policy_asks_for(tmp_path: Path) -> None:
    """cds-digest-types and cdnskey as BIND's dnssec-policy: a CDS per digest type for the
    key in its CDS window, and no CDNSKEY with `cdnskey = false`. Before, `sign` published
    SHA-256 CDS and a CDNSKEY whatever the policy said."""
    kdir, policy, zone = _kdir(tmp_path), tmp_path / "p.toml", tmp_path / "z.db"
    policy.write_text('cds-digest-types = ["sha-256", "sha-384"]\ncdnskey = false\n' + FAST)
    zone.write_text(ZONE_TEXT)
    for at in (T0, T0 + 3 * DAY):  # the second run asks for the KSK's DS
        sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at", _at(at), check=True)
    sc("sign", zone, "--keys", kdir, "--at", _at(T0 + 3 * DAY), check=True)
    origin = dns.name.from_text(ZONE)
    signed = dns.zone.from_file(str(tmp_path / "z.db.signed"), origin, relativize=False)
    cds = signed.find_rdataset(origin, "CDS")
    (ksk,) = (k for k in signed.find_rdataset(origin, "DNSKEY") if k.flags & 1)
    assert sorted((r.key_tag, r.digest_type) for r in cds) == [
        (dns.dnssec.key_id(ksk), 2), (dns.dnssec.key_id(ksk), 4)]
    assert signed.get_rdataset(origin, "CDNSKEY") is None


def test_timing_metadata_rewrite_keeps_the_key() -> None:
    text = "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AAAA\n" \
           "Created: 20260101000000\nPublish: 20260101000000\n"
    out = keyfile.with_timing_private(text, KeyTiming(created=T0, inactive=T0 + DAY))
    assert out.splitlines() == ["Private-key-format: v1.3", "Algorithm: 13 (ECDSAP256SHA256)",
                                "PrivateKey: AAAA", "Created: 20260101000000",
                                "Inactive: 20260102000000"]
    pub = "; This is a zone-signing key, keyid 1, for x.\n; Created: 20260101000000 (Thu Jan " \
          "01 00:00:00 2026)\nx. IN DNSKEY 256 3 13 AAAA\n"
    assert keyfile.with_timing_public(pub, KeyTiming(created=T0, publish=T0)).splitlines() == [
        "; This is a zone-signing key, keyid 1, for x.",
        "; Created: 20260101000000 (Thu Jan 01 00:00:00 2026)",
        "; Publish: 20260101000000 (Thu Jan 01 00:00:00 2026)", "x. IN DNSKEY 256 3 13 AAAA"]


def test_bind_metadata_semantics_for_unscheduled_and_standby_keys() -> None:
    assert not KeyTiming(created=T0).is_published(T0 + DAY)  # made ahead of its roll
    standby = KeyTiming(created=T0, publish=T0)
    assert standby.is_published(T0) and not standby.is_active(T0 + DAY)
    assert KeyTiming().is_published(0) and KeyTiming().is_active(0)


def test_keygen_keys_are_adopted_and_a_bad_key_directory_is_refused(tmp_path: Path) -> None:
    kdir = _kdir(tmp_path)
    made = sc("keygen", ZONE, "--role", "csk", "--dir", kdir, "--json", check=True)
    tag = json.loads(made.stdout)["key_tag"]
    out = json.loads(sc("keys", "run", ZONE, "--policy", "default", "--keys", kdir, "--at",
                        _at(T0), "--json", check=True).stdout)
    assert out["adopted"] == [str(tag)] and out["created"] == []  # the policy's csk: that one
    before = _snapshot(kdir)
    private = next(kdir.glob("*.private"))
    private.write_text(private.read_text().replace("PrivateKey: ", "PrivateKey: !!"))
    bad = sc("keys", "run", ZONE, "--policy", "default", "--keys", kdir, "--at", _at(T0 + DAY))
    assert bad.returncode == 2 and f"{private}:3: PrivateKey is not valid base64" in bad.stderr
    (kdir / keystate.DB_NAME).write_bytes(b"not a database at all" * 100)
    private.write_bytes(before[private.name])
    broken = sc("keys", "status", ZONE, "--keys", kdir)
    assert broken.returncode == 2 and "not a sigchain key state database" in broken.stderr
    assert {p.name for p in kdir.iterdir()} == set(before)


def test_a_run_that_fails_before_its_state_is_saved_purges_no_key_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A purge whose run dies before the state says so (the server SIGKILLed, the database
    unwritable) must not have deleted the key's files: the state still lists the key, and a
    key of the state without its files stops every later run (and the inline signer's start)."""
    from sigchain.core.rollover.policy import parse
    from sigchain.services import keymanager

    kdir, zone = _kdir(tmp_path), dns.name.from_text(ZONE)
    policy = parse(FAST.replace('purge-keys = "10d"', 'purge-keys = "1d"'), "fast.toml", "fast")
    t = T0
    while not any(a.kind == "purge" for a in keymanager.run(
            zone, policy, str(kdir), t, dry_run=True).plan.actions):
        keymanager.run(zone, policy, str(kdir), t)
        t += DAY // 2
        assert t < T0 + 100 * DAY, "no purge in 100 days"
    files = _snapshot(kdir)

    def dies(*args: object) -> None:
        raise OperationalError("cannot write the key state: disk I/O error")

    monkeypatch.setattr(keystate, "save", dies)
    with pytest.raises(OperationalError):
        keymanager.run(zone, policy, str(kdir), t)
    monkeypatch.undo()
    assert {n for n in _snapshot(kdir) if n.startswith("K")} == \
        {n for n in files if n.startswith("K")}  # the state was not saved: nothing purged
    done = keymanager.run(zone, policy, str(kdir), t)  # the next run purges for real
    gone = next(a.key for a in done.plan.actions if a.kind == "purge")
    base = next(sk.base for sk in done.keys if sk.key.id == gone)
    assert not (kdir / f"{base}.key").exists() and not (kdir / f"{base}.private").exists()
    assert next(sk.key.purged for sk in keystate.load(str(kdir), ZONE).keys
                if sk.key.id == gone) == t


def _killed_in(tmp: Path, monkeypatch: pytest.MonkeyPatch, when: str, at: int) -> None:
    """A `keys run` SIGKILLed (no clean-up runs: os._exit in a forked child) just before or
    just after it saves the key state."""
    from sigchain.core.rollover.policy import parse
    from sigchain.services import keymanager

    save = keystate.save

    def dies(*args: object) -> None:
        if when == "after":
            save(*args)  # type: ignore[arg-type]
        os._exit(9)

    pid = os.fork()
    if pid == 0:  # the child: killed inside its run
        try:
            monkeypatch.setattr(keystate, "save", dies)
            keymanager.run(dns.name.from_text(ZONE), parse(FAST, "fast.toml", "fast"),
                           str(tmp), at)
        finally:
            os._exit(1)
    assert os.waitpid(pid, 0)[1] >> 8 == 9


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_run_killed_around_its_state_save_leaves_no_stray_or_missing_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """The first run (the zone's first keys) killed just before its state is saved: the next
    run makes and starts the keys as a first run does, with no key of the dead run left to be
    adopted as an unscheduled key (one that would stop the policy's keys from ever being
    made). Killed just after: the next run finds the keys the state holds, files and all."""
    from sigchain.core.rollover.policy import parse
    from sigchain.services import keymanager

    kdir = _kdir(tmp_path)
    _killed_in(kdir, monkeypatch, when, T0)
    done = keymanager.run(dns.name.from_text(ZONE), parse(FAST, "fast.toml", "fast"), str(kdir),
                          T0 + 60)
    assert done.adopted == ()
    assert sorted(sk.key.role for sk in done.keys) == ["ksk", "zsk"]
    assert all(sk.key.published is not None and sk.key.active is not None for sk in done.keys)
    bases = {sk.base for sk in done.keys}
    assert {p.name for p in kdir.glob("K*")} == {b + e for b in bases for e in (".key",
                                                                             ".private")}
    assert len(keystore.load_zone_keys(str(kdir), dns.name.from_text(ZONE))) == 2
