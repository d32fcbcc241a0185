"""Offline operation end to end (issue 11's acceptance): two simulated years at daily steps of
`keys run --at T` then `sign --at T`, the operator giving `keys ds-seen|ds-gone` when status
asks; dnssec-verify at T (the clock shifted) accepts the zone at every step, and
ldns-verify-zone -t T at every step where the keys change and on a sample; the zone at step N
validates with every DNSKEY and DS set a resolver may have cached from step N-1 (core
validator)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from sigchain.core.dnssec import timefmt
from sigchain.core.rollover import policy as pol
from sigchain.core.validate.validator import validate
from sigchain.core.validate.verdict import Evidence, Question, Status, ZoneCut
from sigchain.services import keymanager, signing
from tests import clockshift
from tests.conftest import need
from tests.unit.test_keys_run import FAST

ZONE = dns.name.from_text("roll.test.")
WWW = dns.name.from_text("www.roll.test.")
DAY = 86400
T0 = timefmt.parse_timestamp14("20270101000000")
# The unit tests' fast policy (TTLs of an hour, 3-day signatures), with longer lifetimes.
POLICY = FAST.replace('lifetime = "60d"', 'lifetime = "150d"').replace(
    'lifetime = "10d"', 'lifetime = "30d"')
ZONE_TEXT = """$ORIGIN roll.test.
$TTL 300
@ SOA ns hm 1 3600 600 86400 300
@ NS ns
ns A 192.0.2.1
www A 192.0.2.2
"""

Signed = tuple[dns.rrset.RRset, dns.rrset.RRset, dns.rrset.RRset, dns.rrset.RRset]


def _bind_accepts(path: Path, at: int, shim: str) -> None:
    env = clockshift.environment(shim, at)
    bind = subprocess.run([need("dnssec-verify"), "-q", "-o", ZONE.to_text(), str(path)],
                          capture_output=True, text=True, env=env)
    assert bind.returncode == 0, f"dnssec-verify at {timefmt.format_utc(at)}: {bind.stderr}"


def _ldns_accepts(path: Path, at: int) -> None:
    ldns = subprocess.run([need("ldns-verify-zone"), "-t", timefmt.format_timestamp14(at),
                           str(path)], capture_output=True, text=True)
    assert ldns.returncode == 0, f"ldns at {timefmt.format_utc(at)}: {ldns.stdout}{ldns.stderr}"


def _read(path: Path) -> Signed:
    z = dns.zone.from_file(str(path), ZONE, relativize=False)

    def get(name: dns.name.Name, rdtype: dns.rdatatype.RdataType, covers: dns.rdatatype.RdataType
            = dns.rdatatype.NONE) -> dns.rrset.RRset:
        rds = z.find_rdataset(name, rdtype, covers)
        rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype, covers)
        rrset.update(rds)
        rrset.ttl = rds.ttl
        return rrset

    return (get(ZONE, dns.rdatatype.DNSKEY), get(ZONE, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY),
            get(WWW, dns.rdatatype.A), get(WWW, dns.rdatatype.RRSIG, dns.rdatatype.A))


def _ds_set(dnskeys: Iterable[dns.dnssec.DNSKEY]) -> dns.rrset.RRset:
    ds = dns.rrset.RRset(ZONE, dns.rdataclass.IN, dns.rdatatype.DS)
    for k in dnskeys:
        ds.add(dns.dnssec.make_ds(ZONE, k, "SHA256"), 3600)
    return ds


def _validates(ds: dns.rrset.RRset, keys: Signed, data: Signed, at: int) -> Status:
    evidence = Evidence(Question(WWW, dns.rdatatype.A), answer=(data[2], data[3]),
                        zones=(ZoneCut(ZONE, dnskey=(keys[0], keys[1])),))
    return validate(evidence, [ds], at).status


class Operator:
    """The zone's operator and its parent: publishes a DS the day status asks for it and says
    `keys ds-seen` the next day; withdraws one likewise."""

    def __init__(self, kdir: str):
        self.kdir = kdir
        self.parent: dict[str, dns.dnssec.DNSKEY] = {}
        self.asked: dict[str, int] = {}
        self.seen = 0

    def act(self, at: int, dnskeys: dict[int, dns.dnssec.DNSKEY]) -> bool:
        st = keymanager.status(ZONE, self.kdir, at)
        told = False
        for a in st.plan.waiting:
            sk = keymanager.find_key(keymanager.stored_zone(ZONE, self.kdir)[0], a.key)
            kind = "ds-published" if a.kind == "await-ds" else "ds-withdrawn"
            if a.key not in self.asked:
                self.asked[a.key] = at
                if kind == "ds-published":
                    self.parent[a.key] = dnskeys[sk.tag]
                else:
                    self.parent.pop(a.key)
            elif self.asked[a.key] < at:
                keymanager.observe(ZONE, self.kdir, a.key, kind, at)
                del self.asked[a.key]
                self.seen += 1
                told = True
        return told


def _dnskeys(kdir: str) -> dict[int, dns.dnssec.DNSKEY]:
    from sigchain.edge import keystore

    return {kp.key_tag: kp.dnskey for kp in (keystore.load_pair(p) for p in
                                             keystore.zone_key_paths(kdir, ZONE))}


def test_two_years_of_daily_runs_stay_valid_for_peers_and_caches() -> None:
    # Every run fsyncs its files and its SQLite commit: on memory, 730 of them take seconds.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    tmp_path = Path(tempfile.mkdtemp(prefix="sigchain-keys-", dir=shm))
    try:
        _two_years(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _two_years(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    shim = clockshift.build(tmp_path)
    policy_file = tmp_path / "fast.toml"
    policy_file.write_text(POLICY)
    policy = pol.parse(POLICY, str(policy_file), "fast")
    kdir, zfile, out = str(tmp_path / "keys"), tmp_path / "roll.db", tmp_path / "roll.signed"
    zfile.write_text(ZONE_TEXT)
    operator = Operator(kdir)
    previous: tuple[Signed, dns.rrset.RRset] | None = None
    checked, created = 0, []
    for day in range(730):
        at = T0 + day * DAY
        result = keymanager.run(ZONE, policy, kdir, at)
        created += [sk.key.role for sk in result.keys if sk.key.id in result.created]
        if operator.act(at, _dnskeys(kdir)):
            keymanager.run(ZONE, policy, kdir, at)
        signing.sign_file(str(zfile), kdir, now=at, inception=at - 3600,
                          validity=policy.signatures_validity, output=str(out), threads=1)
        signed = _read(out)
        ds = _ds_set(operator.parent.values())
        changed = previous is None or previous[0][0] != signed[0] or set(
            r.key_tag for r in previous[0][3]) != set(r.key_tag for r in signed[3])
        _bind_accepts(out, at, shim)  # every step, as the acceptance asks
        if changed or previous[1] != ds or day % 61 == 0:
            _ldns_accepts(out, at)
            checked += 1
        if previous is not None:
            old, old_ds = previous
            for anchor in {id(x): x for x in (old_ds, ds) if len(x)}.values():
                for keys, data in ((old, signed), (signed, signed), (signed, old)):
                    status = _validates(anchor, keys, data, at)
                    assert status is Status.SECURE, (
                        f"day {day} ({timefmt.format_utc(at)}): DS {sorted(operator.parent)}, "
                        f"cached {'old' if keys is old else 'new'} DNSKEY, "
                        f"{'old' if data is old else 'new'} data: {status}")
        previous = signed, ds
    assert created.count("zsk") >= 20 and created.count("ksk") >= 4, created
    assert operator.seen >= 6 and checked >= 20
