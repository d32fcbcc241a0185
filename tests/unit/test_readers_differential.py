"""The zone readers agree: the fast readers (fastparse for signing, signedparse for verifying)
and dnspython's (used for $INCLUDE/$GENERATE) read the same records from good files and refuse
broken ones at the same line, and named-checkzone agrees on which files are broken."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dns.name
import pytest

from sigchain.core.zone import records, wire
from sigchain.edge import fastparse, signedparse, zonefile
from sigchain.errors import InputError
from tests.conftest import need

ORIGIN = dns.name.from_text("example.test.")
HEAD = "$ORIGIN example.test.\n$TTL 3600\n@ SOA ns1 host 1 3600 900 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n"
DS = "12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE0E0F0B2BD10F8C3D2EE0B6E1"

GOOD = {
    "base": "",
    "a_aaaa": "www A 192.0.2.1\nwww AAAA 2001:db8::1\n",
    "cname": "alias CNAME www\nwww A 192.0.2.1\n",
    "mx": "mx MX 10 ns1\nmx A 192.0.2.2\n",
    "txt": 'txt TXT "hello" "world"\n',
    "txt_unquoted": "t2 TXT unquoted words\n",
    "delegation": "sub NS ns.sub\nns.sub A 192.0.2.9\n",
    "srv": "srv._tcp SRV 0 5 5060 ns1\n",
    "ttl_class": "w 600 IN A 192.0.2.1\n",
    "class_ttl": "w IN 600 A 192.0.2.1\n",
    "ttl_units": "t 1h30m A 192.0.2.1\n",
    "wildcard": "*.wild A 192.0.2.3\n",
    "cname_nsec": "c CNAME ns1\nc NSEC ns1 CNAME RRSIG NSEC\n",
    "caa": 'caa CAA 0 issue "ca.example"\n',
    "parens": "p ( A\n 192.0.2.4 ) ; comment\n",
    "generic": "unk TYPE65534 \\# 3 010203\n",
    "escaped": "esc\\.aped A 192.0.2.7\n",
    "origin_change": "$ORIGIN sub2.example.test.\nx A 192.0.2.8\n",
    "duplicate": "dup A 192.0.2.1\ndup A 192.0.2.1\n",
    "two_a": "a1 A 192.0.2.1\na1 A 192.0.2.2\n",
    "ptr": "ptr PTR ns1.example.test.\n",
    "ds": f"ds NS ns1\nds DS {DS}\n",
    "out_of_zone": "outside.other. A 192.0.2.9\n",
    "hinfo": 'h HINFO "PC" "Linux"\n',
    "blank_owner": "www A 192.0.2.1\n  AAAA 2001:db8::1\n",
    "max_txt": "big TXT " + " ".join(['"' + "x" * 254 + '"'] * 255) + "\n",  # 65,280 bytes
}
BROKEN = {
    "cname_then_a": "www CNAME ns1\nwww A 192.0.2.1\n",
    "a_then_cname": "www A 192.0.2.1\nwww CNAME ns1\n",
    "cname_mx": "m CNAME ns1\nm MX 10 ns1\n",
    "cname_txt_apart": 'c CNAME ns1\nother A 192.0.2.1\nc TXT "x"\n',
    "cname_at_apex": "@ CNAME ns1\n",
    "cname_blank_owner": "www CNAME ns1\n  AAAA 2001:db8::1\n",
    "a_999": "www A 192.0.2.999\n",
    "a_word": "www A not-an-address\n",
    "aaaa_bad": "www AAAA 2001:db8::zz\n",
    "unknown_type": "www BOGUS 1\n",
    "class_ch": "www CH A 192.0.2.1\n",
    "empty_label": "bad..name A 192.0.2.1\n",
    "label_64": "x" * 64 + " A 192.0.2.1\n",
    "mx_pref": "mx MX 70000 ns1\n",
    "srv_port": "srv._tcp SRV 0 5 99999 ns1\n",
    "unbalanced": "p ( A 192.0.2.4\n",
    "txt_over_65535": "big TXT " + " ".join(['"' + "x" * 250 + '"'] * 270) + "\n",
    "txt_string_256": 'long TXT "' + "y" * 256 + '"\n',
    "bad_ttl_directive": "$TTL abc\nw A 192.0.2.1\n",
    "missing_rdata": "www A\n",
    "ds_bad_hex": "ds NS ns1\nds DS 12345 13 2 XYZ\n",
}


def _outcome(read: object) -> tuple:
    """('ok', records) or ('error', line, CNAME-and-other-data or not)."""
    try:
        return ("ok", read())  # type: ignore[operator]
    except InputError as exc:
        return ("error", exc.line, str(exc.message).startswith("CNAME and other data"))


def _fast(path: Path) -> tuple:
    return _outcome(lambda: {(r.key, r.rdtype, r.ttl, r.wires)
                             for r in fastparse.parse(path.read_text(), str(path), ORIGIN)[0]})


def _dnspython(path: Path) -> tuple:
    return _outcome(lambda: {(r.key, r.rdtype, r.ttl, r.wires)
                             for r in records.from_rdatasets(zonefile.load_zone(str(path), "example.test.").nodes)})


def _signed_fast(path: Path) -> tuple:
    return _outcome(lambda: {(r.key, r.rdtype, r.ttl, r.wires)
                             for r in signedparse.parse(path.read_text(), str(path), ORIGIN)[0]})


def _signed_dnspython(path: Path) -> tuple:
    return _outcome(lambda: {(r.key, r.rdtype, r.ttl, r.wires) for r in
                             wire.from_nodes(zonefile.load_zone(str(path), "example.test.").nodes)})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("corpus")
    out = {}
    for name, body in (GOOD | BROKEN).items():
        out[name] = d / f"{name}.zone"
        out[name].write_text(HEAD + body)
    return out


def test_corpus_is_big_enough() -> None:
    assert len(GOOD) >= 20 and len(BROKEN) >= 20 and not GOOD.keys() & BROKEN.keys()


@pytest.mark.parametrize("name", sorted(GOOD | BROKEN))
def test_readers_agree_and_named_checkzone_judges(corpus: dict[str, Path], name: str) -> None:
    path = corpus[name]
    fast, full = _fast(path), _dnspython(path)
    assert fast == full, f"{name}: fast {fast[:3]} vs dnspython {full[:3]}"
    assert _signed_fast(path) == _signed_dnspython(path)
    judge = subprocess.run([need("named-checkzone"), "-q", "example.test", str(path)], capture_output=True)
    broken = name in BROKEN
    assert (judge.returncode != 0) == broken, f"named-checkzone {'accepts' if broken else 'refuses'} {name}"
    assert (fast[0] == "error") == broken
    if broken and name.startswith("cname_"):
        assert fast[2]  # refused as CNAME and other data, not something else
