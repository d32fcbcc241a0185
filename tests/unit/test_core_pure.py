"""Pure core pieces with no files or peers: time syntax, serial arithmetic, zone shape,
key timing, and the verifier on in-memory zones."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataset
import pytest
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms, keyfile, timefmt
from sigchain.core.dnssec.rrsig import SigWindow, serial_lt, time_status
from sigchain.core.sign import apex, signer
from sigchain.core.verify.verifier import verify_records
from sigchain.core.zone.nsec3hash import Nsec3Params
from sigchain.core.zone.records import from_rdatasets
from sigchain.core.zone.shape import NodeKind, shape
from sigchain.core.zone.wire import from_nodes
from sigchain.errors import InputError, UnsafeRefused
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming
from tests.zonetools import sign_nodes

N = dns.name.from_text
NOW = 1_800_000_000


def test_time_syntax() -> None:
    assert timefmt.parse_time("20300101000000", NOW) == 1893456000
    assert timefmt.parse_time("1893456000", NOW) == 1893456000
    assert timefmt.parse_time("now", NOW) == NOW
    assert timefmt.parse_time("now-1h", NOW) == NOW - 3600
    assert timefmt.parse_time("now+2w", NOW) == NOW + 14 * 86400
    assert timefmt.parse_duration("14d") == 14 * 86400
    assert timefmt.parse_duration("90") == 90
    for bad in ("yesterday", "now*2", "2030-01-01"):
        with pytest.raises(InputError):
            timefmt.parse_time(bad, NOW)
    with pytest.raises(InputError):
        timefmt.parse_duration("2 days")


def test_rrsig_windows_use_serial_arithmetic() -> None:
    assert serial_lt(1, 2) and not serial_lt(2, 1)
    assert serial_lt(2**32 - 10, 5)  # wraps: 5 is "after" 2^32-10
    assert time_status(NOW - 10, NOW + 10, NOW) == "ok"
    assert time_status(NOW - 10, NOW - 1, NOW) == "expired"
    assert time_status(NOW + 1, NOW + 10, NOW) == "not-yet-valid"


@pytest.mark.parametrize(("current", "policy", "now", "expect"), [
    (5, "keep", NOW, 5), (5, "increment", NOW, 6), (2**32 - 1, "increment", NOW, 1),
    (5, "unixtime", NOW, NOW), (NOW + 100, "unixtime", NOW, NOW + 101), (NOW, "unixtime", NOW, NOW + 1),
])
def test_next_serial(current: int, policy: str, now: int, expect: int) -> None:
    assert apex.next_serial(current, policy, now) == expect


def test_zone_shape() -> None:
    o = N("example.test.")
    types = {
        o: {RdataType.SOA, RdataType.NS}, N("a.b.c.example.test."): {RdataType.A},
        N("sub.example.test."): {RdataType.NS, RdataType.DS}, N("ns.sub.example.test."): {RdataType.A},
        N("x.y.sub.example.test."): {RdataType.A}, N("d.example.test."): {RdataType.DNAME},
        N("under.d.example.test."): {RdataType.TXT},
    }
    s = shape(o, types)
    assert s.kinds[o] is NodeKind.APEX
    assert s.kinds[N("b.c.example.test.")] is NodeKind.ENT and s.kinds[N("c.example.test.")] is NodeKind.ENT
    assert s.kinds[N("sub.example.test.")] is NodeKind.DELEGATION
    assert s.kinds[N("ns.sub.example.test.")] is NodeKind.OCCLUDED
    assert s.kinds[N("x.y.sub.example.test.")] is NodeKind.OCCLUDED
    assert N("y.sub.example.test.") not in s.kinds  # no ENTs below a cut
    assert s.kinds[N("under.d.example.test.")] is NodeKind.OCCLUDED
    assert s.is_signed_at(N("sub.example.test."), RdataType.DS)
    assert not s.is_signed_at(N("sub.example.test."), RdataType.NS)
    assert s.authoritative() == sorted(s.authoritative())


def test_key_timing() -> None:
    t = KeyTiming(publish=100, activate=200, inactive=300, delete=400)
    assert [t.is_published(x) for x in (50, 150, 350, 400)] == [False, True, True, False]
    assert [t.is_active(x) for x in (150, 250, 300)] == [False, True, False]
    assert KeyTiming().is_active(0)  # no metadata: published and active, as dnssec-signzone


def _key(role: KeyRole, alg: int = 13) -> KeyPair:
    a = algorithms.get(alg)
    priv = algorithms.generate(a)
    return KeyPair(N("example.test."), alg, keyfile.make_dnskey(a, priv, role.flags), priv, KeyTiming())


def _zone() -> dict[dns.name.Name, list[dns.rdataset.Rdataset]]:
    def rds(t: str, *texts: str) -> dns.rdataset.Rdataset:
        return dns.rdataset.from_text("IN", t, 300, *texts)

    return {
        N("example.test."): [rds("SOA", "ns.example.test. h.example.test. 1 2 3 4 60"), rds("NS", "ns.example.test.")],
        N("ns.example.test."): [rds("A", "192.0.2.1")],
        N("*.w.example.test."): [rds("TXT", '"w"')],
    }


@pytest.mark.parametrize("nsec3", [None, Nsec3Params()])
def test_sign_then_verify_in_memory(nsec3: Nsec3Params | None) -> None:
    keys = [_key(KeyRole.KSK), _key(KeyRole.ZSK)]
    opts = signer.SignOptions(SigWindow(NOW - 3600, 86400, 3600, b"seed"), nsec3)
    signed = sign_nodes(_zone(), N("example.test."), keys, opts, NOW)
    report = verify_records(from_nodes(signed), N("example.test."), NOW)
    assert report.findings == [] and report.denial == ("nsec3" if nsec3 else "nsec")
    later = verify_records(from_nodes(signed), N("example.test."), NOW + 2 * 86400)
    assert {f.code for f in later.findings} == {"RRSIG_EXPIRED"}
    # NSEC/NSEC3 TTL = min(SOA MINIMUM, SOA TTL) (RFC 9077)
    denial_type = RdataType.NSEC3 if nsec3 else RdataType.NSEC
    ttls = {rds.ttl for rdatasets in signed.values() for rds in rdatasets if rds.rdtype == denial_type}
    assert ttls == {60}


def test_algorithm_without_active_key_is_refused() -> None:
    ksk = _key(KeyRole.KSK)
    pending = _key(KeyRole.ZSK, 15)
    pending = KeyPair(pending.zone, 15, pending.dnskey, pending.private, KeyTiming(publish=0, activate=NOW + 10))
    opts = signer.SignOptions(SigWindow(NOW, 86400, 0))
    with pytest.raises(UnsafeRefused, match="RFC 6840"):
        signer.prepare(from_rdatasets(_zone()), N("example.test."), [ksk, pending], opts, NOW)


def test_verifying_a_zone_without_soa_is_input_error() -> None:
    """Every zone reader refuses such a zone; the verifier does too, rather than guess."""
    zone = _zone()
    zone[N("example.test.")] = zone[N("example.test.")][1:]
    with pytest.raises(InputError, match="no SOA record at the zone apex example.test."):
        verify_records(from_nodes(zone), N("example.test."), NOW)


def test_missing_soa_is_input_error() -> None:
    zone = _zone()
    zone[N("example.test.")] = zone[N("example.test.")][1:]
    with pytest.raises(InputError, match="SOA"):
        signer.prepare(from_rdatasets(zone), N("example.test."), [_key(KeyRole.CSK)],
                       signer.SignOptions(SigWindow(NOW, 86400, 0)), NOW)
