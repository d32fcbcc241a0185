"""The verifier's fast reader gives the wire RRsets dnspython's reader gives, and verifying
them finds what verifying dnspython's nodes finds."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest
from dns.rdatatype import RdataType

from sigchain.core.verify.verifier import verify_records
from sigchain.core.zone import wire
from sigchain.edge import signedparse, zonefile
from sigchain.errors import InputError
from tests.zonetools import ESCAPES_AND_CLASSES

DATA = Path(__file__).parent / "data"
NOW = 1_200_000_000  # inside the RFC zones' signature windows

# Spellings the fast path must take as dnspython does, or hand over to it.
ODD = r"""
$TTL 300
$ORIGIN Example.TEST.
@ SOA ns1 h ( 1 2 3 4 300 )
  NS ns1
  RRSIG SOA 13 2 300 ( 20261212045645
        20261129041335 11265 Example.TEST.
        DjAe9Sjy+Uoep/320YPy0dm0GhPBCpMxqy+ehIYYeXTdLVZRqKHUNNgbS/scCMpvTqDUxbLkmTXbHhZxRGOLiA== )
  RRSIG NS ECDSAP256SHA256 2 1h 1765000000 1764000000 11265 @ AAAA BBBB
  NSEC Ns1.Example.TEST. NS SOA RRSIG NSEC TYPE65534
ns1 A 192.0.2.1
ttl 1H IN A 192.0.2.3
    IN 0300 AAAA 2001:db8::3
    NSEC @ A RRSIG NSEC
    RRSIG NSEC 13 3 300 20261212045645 20261129041335 11265 example.test. AAAA
h NSEC3 1 1 0 aabb 001iclk3qcjvdfpurlialc1kqa91l1d6 A RRSIG
h2 NSEC3 1 0 12 - 04106 A
h3 300 IN NSEC3 1 0 0 - 001ICLK3QCJVDFPURLIALC1KQA91L1D6
""" + ESCAPES_AND_CLASSES + "outside.other. A 192.0.2.9\n"


def _wire_of_nodes(path: Path, origin: str | None) -> set[tuple]:
    zone = zonefile.load_zone(str(path), origin, require_ns=False)
    return _norm(wire.from_nodes(zone.nodes))


def _norm(rrsets: list[wire.WireRRset]) -> set[tuple]:
    """dnspython keeps an RRSIG RRset per covered type, the fast reader one per name: compare
    the signatures per name (their TTLs do not matter)."""
    out = {(r.key, r.rdtype, r.ttl, r.wires) for r in rrsets if r.rdtype != RdataType.RRSIG}
    sigs: dict[tuple, set[bytes]] = {}
    for r in rrsets:
        if r.rdtype == RdataType.RRSIG:
            sigs.setdefault(r.key, set()).update(r.wires)
    return out | {(k, RdataType.RRSIG, None, tuple(sorted(w))) for k, w in sigs.items()}


@pytest.mark.parametrize("zone", ["rfc4035-appendix-a.zone", "rfc5155-appendix-a.zone", "odd"])
def test_same_rrsets_as_dnspython(tmp_path: Path, zone: str) -> None:
    if zone == "odd":
        path, origin = tmp_path / "odd", "example.test."
        path.write_text(ODD)
    else:
        path, origin = DATA / zone, None
    fast = zonefile.load_wire(str(path), origin, require_ns=False)
    assert _norm(fast.rrsets) == _wire_of_nodes(path, origin)
    # Exactly dnspython's RRsets: an RRSIG RRset per covered type, each with its TTL.
    zone = zonefile.load_zone(str(path), origin, require_ns=False)
    assert sorted(fast.rrsets) == sorted(wire.from_nodes(zone.nodes))
    if zone == "odd":
        assert any("outside.other." in w for w in fast.warnings)


@pytest.mark.parametrize("zone", ["rfc4035-appendix-a.zone", "rfc5155-appendix-a.zone"])
def test_fast_reader_verifies_as_the_dnspython_reader(zone: str) -> None:
    path = str(DATA / zone)
    loaded = zonefile.load_zone(path, require_ns=False)
    fast = zonefile.load_wire(path, require_ns=False)
    for at in (NOW, NOW + 20 * 365 * 86400):
        expected = verify_records(wire.from_nodes(loaded.nodes), loaded.origin, at)
        got = verify_records(fast.rrsets, fast.origin, at)
        assert got.findings == expected.findings
        assert (got.signatures_verified, got.rrsets_checked) == (expected.signatures_verified, expected.rrsets_checked)
    assert any(f.code == "RRSIG_EXPIRED" for f in got.findings)


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("@ SOA ns h 1 2 3 4 5\n@ NS ns\n@ RRSIG NS 13 1 60 202611290413 20261129041335 1 @ AAAA\n", 4, "@ RRSIG NS"),
    ("@ SOA ns h 1 2 3 4 5\n@ NS ns\n@ NSEC3 1 0 0 xyz 00 A\n", 4, "xyz"),
    ("@ SOA ns h 1 2 3 4 5\n@ NS ns\n@ NSEC3 1 0 0 - 001ICLK3QCJVDFPU\n( A\n", 5, "parenthes"),
    ("@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww A 192.0.2.1 )\n", 4, "parenthes"),
    ("@ SOA ns h 1 2 3 4 5\n$BOGUS 1\n", 3, "BOGUS"),
    ("@ SOA ns h 1 2 3 4 5\n@ RRSIG A 13 1 60 20261301000000 20261129041335 1 @ AAAA\n", 3, "RRSIG A"),
    ("@ SOA ns h 1 2 3 4 5\n@ NSEC ns.example.test. A TYPE0\n", 3, "NSEC"),
    # RFC 4648 §3.3: not skipped, as dnspython's decoder would (dnssec-verify refuses it too)
    ("@ SOA ns h 1 2 3 4 5\n@ RRSIG SOA 13 0 60 20261212045645 20261129041335 1 @ AA!*AA\n", 3,
     "bad base64"),
])
def test_errors_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        signedparse.parse("$TTL 60\n" + text, "f.zone", dns.name.from_text("example.test."), require_ns=False)
    assert err.value.line == line and fragment in str(err.value)


def test_include_is_left_to_the_full_reader(tmp_path: Path) -> None:
    (tmp_path / "inc").write_text("ns1 A 192.0.2.1\n")
    path = tmp_path / "z"
    path.write_text(f"$ORIGIN example.test.\n$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n$INCLUDE {tmp_path / 'inc'}\n")
    fast = zonefile.load_wire(str(path))
    assert _norm(fast.rrsets) == _wire_of_nodes(path, None)
    assert any(r.rdtype == 1 for r in fast.rrsets)
