"""The signer's fast zone reader gives exactly the RRsets dnspython's reader gives."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from sigchain.core.zone import records
from sigchain.edge import fastparse, zonefile
from sigchain.errors import InputError
from tests.zonetools import ESCAPES_AND_CLASSES

ZONE = r"""
$TTL 1h
$ORIGIN Example.TEST.
@   IN  SOA ns1 hostmaster ( 2026112901 ; serial
            7200 3600 1209600 300 )
    IN  NS  ns1
    IN  NS  ns2.example.test.
    600 IN MX 10 Mail
    IN  TXT "v=spf1 mx -all" "second; string" ; a comment with "quotes"
ns1 IN  A   192.0.2.1
ns2 IN 300 AAAA 2001:DB8::2
www A 192.0.2.10
    AAAA 2001:db8::10
web CNAME www
*.wild TXT "wild card"
srv._tcp SRV 0 5 5060 sip.example.test.
caa CAA 0 issue "ca.example.net"
unk TYPE65534 \# 3 010203
esc\.aped A 192.0.2.77
txt2 TXT unquoted words
$ORIGIN sub.example.test.
@ NS ns
  DS 12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC 1AFE51DE0E0F0B2BD10F8C3D2EE0B6E1
ns A 192.0.2.53
$ORIGIN example.test.
dup A 192.0.2.1
dup A 192.0.2.1
""" + ESCAPES_AND_CLASSES + "outside.other. A 192.0.2.9\n"


def _by_dnspython(path: Path, origin: str) -> set[tuple]:
    zone = zonefile.load_zone(str(path), origin)
    return {_norm(r) for r in records.from_rdatasets(zone.nodes)}


def _norm(r: records.RRsetRec) -> tuple:
    return (r.key, r.rdtype, r.ttl, r.wires)


def test_same_rrsets_as_dnspython(tmp_path: Path) -> None:
    path = tmp_path / "z"
    path.write_text(ZONE)
    origin = dns.name.from_text("example.test.")
    fast, warnings = fastparse.parse(ZONE, str(path), origin)
    assert {_norm(r) for r in fast} == _by_dnspython(path, "example.test.")
    assert any("outside.other." in w for w in warnings)
    texts = {r.rdtype: r.texts for r in fast if r.key == records.key_of(origin)}
    assert texts[15] == ("10 Mail.Example.TEST.",)  # names absolute, case kept
    assert len([r for r in fast if r.key[-1:] == (b"dup",)][0].wires) == 1


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww A 192.0.2.999\n", 4, "192.0.2.999"),
    ("@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww BOGUS 1\n", 4, "BOGUS"),
    ("@ SOA ns h ( 1 2 3 4 5\n@ NS ns\n", 2, "parenthes"),
    ("@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww CH A 192.0.2.1\n", 4, "not IN"),
    ("@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww CLASS3 A 192.0.2.1\n", 4, "CLASS3 is not IN"),
    ("@ SOA ns h 1 2 3 4 5\n@ NS ns\nbad..name A 192.0.2.1\n", 4, "bad..name"),
])
def test_errors_name_the_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        fastparse.parse("$TTL 60\n" + text, "f.zone", dns.name.from_text("example.test."))
    assert err.value.line == line and fragment in str(err.value)


def test_include_is_left_to_the_full_reader(tmp_path: Path) -> None:
    (tmp_path / "inc").write_text("www A 192.0.2.1\n")
    main = tmp_path / "main"
    main.write_text(f"$TTL 60\n$ORIGIN example.test.\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n$INCLUDE {tmp_path / 'inc'}\n")
    with pytest.raises(fastparse.NeedsFullReader):
        fastparse.parse(main.read_text(), str(main), dns.name.from_text("example.test."))
    origin, rrsets, _ = zonefile.load_records(str(main))
    assert any(r.key[-1:] == (b"www",) for r in rrsets)


def test_ttl_rules() -> None:
    text = "$ORIGIN example.test.\n@ 100 SOA ns h 1 2 3 4 5\n@ NS ns\nns 200 A 192.0.2.1\nx A 192.0.2.2\n"
    rrsets, _ = fastparse.parse(text, "f", dns.name.from_text("example.test."))
    ttl = {(r.key[-1] if len(r.key) > 2 else b"@", r.rdtype): r.ttl for r in rrsets}
    assert ttl[(b"@", 6)] == 100 and ttl[(b"@", 2)] == 100  # last explicit TTL (RFC 2308)
    assert ttl[(b"x", 1)] == 200


MIXED = """$TTL 300
$ORIGIN example.test.
@ SOA ns h 1 2 3 4 5
@ NS ns
mixed 600 A 192.0.2.20
mixed A 192.0.2.21
mixed 900 A 192.0.2.22
same A 192.0.2.23
same A 192.0.2.24
"""


def test_records_of_other_ttls_warn_and_the_rrset_takes_the_lowest(tmp_path: Path) -> None:
    """RFC 2181 §5.2: an RRset's records share one TTL. A file that gives them several is
    read (the lowest taken, as a resolver treats such an RRset) with a warning naming each
    record's line, its TTL and the RRset's: from every reader, the same."""
    path = tmp_path / "z"
    path.write_text(MIXED)
    origin = dns.name.from_text("example.test.")
    fast, warnings = fastparse.parse(MIXED, str(path), origin)
    assert [r.ttl for r in fast if r.key[-1:] == (b"mixed",)] == [300]
    assert [r.ttl for r in fast if r.key[-1:] == (b"same",)] == [300]
    assert warnings == [
        f"{path}: records with another TTL than the rest of their RRset (RFC 2181 §5.2), each "
        "RRset given its lowest: line 6 mixed.example.test. A TTL 300, the RRset's 600, "
        "line 7 mixed.example.test. A TTL 900, the RRset's 300"]
    assert zonefile.load_zone(str(path)).warnings == warnings  # dnspython's reader
    assert zonefile.load_wire(str(path)).warnings == warnings  # the signed-zone reader
    # In an $INCLUDEd file (dnspython's reader), the line is that file's.
    main = tmp_path / "main"
    main.write_text(f"$ORIGIN example.test.\n$INCLUDE {path}\n")
    (included,) = zonefile.load_zone(str(main)).warnings
    assert f"{main}: records with" in included and f"{path} line 6 mixed.example.test. A" in included


def test_signatures_of_rrsets_with_other_ttls_are_no_warning(tmp_path: Path) -> None:
    """RFC 4034 §3: the RRSIGs at a name carry the TTLs of the RRsets they cover."""
    sig = "20261219022020 20261205070802 38278 example.test. BDR+aHLkzTpzB/Ddl6cfOZOTm1a5ZkIZlddWo02u"
    text = (MIXED.split("mixed")[0] + f"www 60 A 192.0.2.1\nwww 60 RRSIG A 13 3 60 {sig}\n"
            f"www 900 TXT x\nwww 900 RRSIG TXT 13 3 900 {sig}\n")
    path = tmp_path / "z"
    path.write_text(text)
    assert fastparse.parse(text, str(path), dns.name.from_text("example.test."))[1] == []
    assert zonefile.load_zone(str(path)).warnings == zonefile.load_wire(str(path)).warnings == []


def test_non_ascii_names_are_their_bytes_not_punycode(tmp_path: Path) -> None:
    """RFC 1035 §5.1: labels are bytes. A UTF-8 name is read as its bytes, as BIND reads it
    (b\\195\\188cher), not turned into another name by IDNA (xn--bcher-kva); in RDATA and
    from every reader alike."""
    text = ("$TTL 300\n$ORIGIN example.test.\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n"
            "bücher A 192.0.2.1\nmx MX 10 mäil\nt TXT \"héllo\"\n")
    path = tmp_path / "z"
    path.write_text(text, encoding="utf-8")
    origin, fast, _ = zonefile.load_records(str(path))
    keys = {r.key[-1] for r in fast}
    assert "bücher".encode() in keys and not any(k.startswith(b"xn--") for k in keys)
    (mx,) = [r for r in fast if r.rdtype == 15]
    assert mx.wires == (b"\x00\x0a\x05m\xc3\xa4il\x07example\x04test\x00",)
    assert mx.texts == ("10 m\\195\\164il.example.test.",)
    assert {_norm(r) for r in fast} == _by_dnspython(path, "example.test.")
    assert {(r.key, r.rdtype, r.wires) for r in fast} >= {
        (r.key, r.rdtype, r.wires) for r in zonefile.load_wire(str(path)).rrsets if r.rdtype != 6}
    # an $INCLUDE's file name is a path: kept as it is (its origin argument is a name)
    (tmp_path / "inclüded").write_text("wörd A 192.0.2.9\n", encoding="utf-8")
    main = tmp_path / "main"
    main.write_text(f"$TTL 60\n$ORIGIN example.test.\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n"
                    f"$INCLUDE {tmp_path / 'inclüded'} sübzone.example.test.\n", encoding="utf-8")
    rrsets = [r for r in zonefile.load_records(str(main))[1] if r.rdtype == 1]
    assert [r.key for r in rrsets] == [records.key_of(dns.name.from_text(r"w\195\182rd.s\195\188bzone.example.test."))]
    (tmp_path / "a dir").mkdir()  # a quoted path, blanks in it
    (tmp_path / "a dir" / "inclüded").write_text("wörd A 192.0.2.9\n", encoding="utf-8")
    main.write_text(f"$TTL 60\n$ORIGIN example.test.\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n"
                    f'$INCLUDE "{tmp_path / "a dir" / "inclüded"}"\n', encoding="utf-8")
    rrsets = [r for r in zonefile.load_records(str(main))[1] if r.rdtype == 1]
    assert [r.key for r in rrsets] == [records.key_of(dns.name.from_text(r"w\195\182rd.example.test."))]
