"""`sigchain serve` answers as BIND's `named` (minimal-responses yes) does for the same
signed zone: rcode, AA/TC, and the same RRsets in each section, query by query.

One known, deliberate difference: for a delegation whose NS target is in the parent zone
but outside the delegated name ("sibling glue", RFC 9471 §2), we add its address record to
the additional section and named 9.18 does not; the additional section is compared for
in-bailiwick glue only.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.rrset
import pytest

from tests.conftest import need, sc, terminate
from tests.interop.test_serve import HOST, Server, example_zone, free_port
from tests.zonetools import keygen

QUERIES = [
    ("www.example.test.", "A"), ("WwW.eXaMpLe.TeSt.", "AAAA"), ("example.test.", "SOA"),
    ("example.test.", "NS"), ("example.test.", "DNSKEY"), ("example.test.", "CDS"),
    ("example.test.", "CDNSKEY"), ("example.test.", "MX"), ("example.test.", "ANY"),
    ("web.example.test.", "A"), ("web.example.test.", "CNAME"), ("web.example.test.", "MX"),
    ("foo.wild.example.test.", "A"), ("x.y.wild.example.test.", "TXT"), ("foo.wild.example.test.", "MX"),
    ("*.wild.example.test.", "A"), ("nope.example.test.", "A"), ("deep.er.nope.example.test.", "TXT"),
    ("z.c.example.test.", "A"), ("b.c.example.test.", "A"), ("c.example.test.", "TXT"),
    ("www.example.test.", "MX"), ("host.sub.example.test.", "A"), ("sub.example.test.", "NS"),
    ("sub.example.test.", "DS"), ("insecure.example.test.", "DS"), ("a.insecure.example.test.", "A"),
    ("ns.sub.example.test.", "A"), ("x.child.deep.example.test.", "A"), ("deep.example.test.", "A"),
    ("mail.example.test.", "A"), ("www.example.org.", "A"), ("big.example.test.", "TXT"),
]


class Named:
    """BIND's named serving one zone in the foreground on a loopback port."""

    def __init__(self, tmp: Path, zone_file: Path):
        self.port = free_port()
        conf = tmp / "named.conf"
        conf.write_text(f"""
options {{
  directory "{tmp}"; pid-file "{tmp}/named.pid"; managed-keys-directory "{tmp}";
  session-keyfile "{tmp}/session.key";
  listen-on port {self.port} {{ {HOST}; }}; listen-on-v6 {{ none; }};
  recursion no; minimal-responses yes; dnssec-validation no; notify no;
}};
zone "example.test" {{ type primary; file "{zone_file}"; }};
""")
        self.log = tmp / "named.log"
        self._logf = open(self.log, "w")
        self.proc = subprocess.Popen([need("named"), "-g", "-n", "1", "-c", str(conf)],
                                     stdout=self._logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "running" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"named did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        terminate(self.proc)
        self._logf.close()


@pytest.fixture(scope="module", params=["nsec", "nsec3"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    base = tmp_path_factory.mktemp(f"vsnamed-{request.param}")
    keygen(base / "keys", "example.test", "ksk")
    keygen(base / "keys", "example.test", "zsk")
    zone = base / "example.test.signed"
    sc("sign", example_zone(base), "--keys", base / "keys", "-o", zone, "--cds",
       *(["--nsec3"] if request.param == "nsec3" else []), check=True)
    named = Named(base, zone)
    ours = Server(base, {"example.test": zone})
    try:
        yield ours.port, named.port
    finally:
        named.stop()
        assert ours.stop() == 0


def _ask(port: int, qname: str, qtype: str, do: bool, payload: int, tcp: bool) -> dns.message.Message:
    q = dns.message.make_query(qname, qtype, want_dnssec=do, use_edns=0, payload=payload)
    q.flags &= ~dns.flags.RD
    if tcp:
        return dns.query.tcp(q, HOST, port=port, timeout=5)
    return dns.query.udp(q, HOST, port=port, timeout=5)


def _section(rrsets: list[dns.rrset.RRset]) -> set[str]:
    """RRsets as comparable text, TTLs included, order ignored."""
    return {line for r in rrsets for line in r.to_text().splitlines()}


def _glue(r: dns.message.Message) -> set[str]:
    cuts = [x.name for x in r.authority if x.rdtype == dns.rdatatype.NS]
    return _section([x for x in r.additional if any(x.name.is_subdomain(c) for c in cuts)])


@pytest.mark.parametrize("do", [True, False], ids=["do", "nodo"])
def test_same_answers_as_named(pair: tuple[int, int], do: bool) -> None:
    ours_port, named_port = pair
    for qname, qtype in QUERIES:
        ours = _ask(ours_port, qname, qtype, do, 1232, tcp=False)
        theirs = _ask(named_port, qname, qtype, do, 1232, tcp=False)
        what = f"{qname} {qtype} do={do}"
        assert ours.rcode() == theirs.rcode(), what
        mask = dns.flags.QR | dns.flags.AA | dns.flags.TC | dns.flags.RD
        assert ours.flags & mask == theirs.flags & mask, what
        assert ours.question[0].name.to_text() == theirs.question[0].name.to_text() == qname, what
        assert _section(ours.answer) == _section(theirs.answer), what
        assert _section(ours.authority) == _section(theirs.authority), what
        assert _glue(ours) == _glue(theirs), what
        assert (ours.edns, ours.payload, ours.ednsflags & dns.flags.DO) == (
            theirs.edns, theirs.payload, theirs.ednsflags & dns.flags.DO), what


def test_same_truncation_as_named(pair: tuple[int, int]) -> None:
    ours_port, named_port = pair
    for qname, qtype in [("example.test.", "ANY"), ("example.test.", "DNSKEY"), ("nope.example.test.", "A"),
                         ("big.example.test.", "TXT"), ("x.wild.example.test.", "MX")]:
        for payload in (512, 1232):
            ours = _ask(ours_port, qname, qtype, True, payload, tcp=False)
            theirs = _ask(named_port, qname, qtype, True, payload, tcp=False)
            assert bool(ours.flags & dns.flags.TC) == bool(theirs.flags & dns.flags.TC), (qname, qtype, payload)
            assert ours.rcode() == theirs.rcode()
        ours = _ask(ours_port, qname, qtype, True, 512, tcp=True)
        theirs = _ask(named_port, qname, qtype, True, 512, tcp=True)
        assert _section(ours.answer) == _section(theirs.answer)
        assert _section(ours.authority) == _section(theirs.authority)
