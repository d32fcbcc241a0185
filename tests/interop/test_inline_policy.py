"""SIGHUP re-reads an inline zone's policy file (issue 15; BIND's `rndc reconfig` with a changed
`dnssec-policy`): a new algorithm starts an algorithm roll in the running server, while a
change of the denial or a broken policy file is refused and the running policy kept.

Judge: BIND's dnssec-verify on the zone transferred out. Binds 127.62.9.1 (in
test_inline.py's range, apart from its addresses)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from tests.conftest import free_port
from tests.interop.livelab import fast_policy
from tests.interop.test_inline import ORIGIN, UNSIGNED, axfr, config, dnssec_verify
from tests.interop.test_transfer import Serve, wait_for

HOST = "127.62.9.1"


def _algorithms(port: int, rdtype: str) -> set[int]:
    """The algorithms of the DNSKEYs (rdtype DNSKEY) or of the RRSIGs over www A (rdtype A)."""
    q = dns.message.make_query(ORIGIN if rdtype == "DNSKEY" else f"www.{ORIGIN}", rdtype,
                               want_dnssec=True)
    r = dns.query.tcp(q, HOST, port=port, timeout=3)
    if rdtype == "DNSKEY":
        return {rr.algorithm for rrset in r.answer if rrset.rdtype == dns.rdatatype.DNSKEY
                for rr in rrset}
    return {rr.algorithm for rrset in r.answer if rrset.rdtype == dns.rdatatype.RRSIG
            for rr in rrset}


def _reloaded(serve: Serve, before: int) -> None:
    """SIGHUP, and wait for the reload it starts to be logged as done."""
    serve.proc.send_signal(signal.SIGHUP)
    wait_for("the reload", lambda: serve.text().count("SIGHUP: reloading zones") > before,
             text=serve.text)
    time.sleep(0.5)


def test_sighup_with_a_new_algorithm_in_the_policy_file_starts_an_algorithm_roll(
        tmp_path: Path) -> None:
    port = free_port(HOST)
    policy = tmp_path / "fast.toml"
    policy.write_text(fast_policy("ecdsap256sha256"))
    # TTLs within the fast policy's max-zone-ttl (1s), or the zone is refused, as by BIND
    (tmp_path / "example.test.zone").write_text(UNSIGNED.replace("$TTL 300", "$TTL 1"))
    serve = Serve(tmp_path, config(tmp_path, port, "fast.toml", host=HOST), port)
    try:
        assert _algorithms(port, "DNSKEY") == {13}

        # NSEC instead of NSEC3: refused until a restart, the zone as it was
        policy.write_text("nsec = true\n" + fast_policy("ecdsap256sha256"))
        _reloaded(serve, 0)
        assert "policy not changed" in serve.text() and "NSEC/NSEC3" in serve.text()
        assert _algorithms(port, "DNSKEY") == {13}

        # a broken policy file: an error naming it, the running policy kept
        policy.write_text('[[keys]]\nrole = "ksk"\nalgorithm = "no-such-algorithm"\n')
        _reloaded(serve, 1)
        assert serve.text().count("policy not changed") == 2
        assert str(policy) in serve.text()
        assert _algorithms(port, "DNSKEY") == {13}

        # Ed25519: the running server starts the algorithm roll (both algorithms sign)
        policy.write_text(fast_policy("ed25519"))
        _reloaded(serve, 2)
        assert "policy fast re-read" in serve.text()
        wait_for("Ed25519 keys and signatures",
                 lambda: _algorithms(port, "DNSKEY") == {13, 15}
                 and _algorithms(port, "A") == {13, 15}, text=serve.text)
        dnssec_verify(axfr(HOST, port), tmp_path / "served.zone")
        assert serve.proc.poll() is None, serve.text()
    finally:
        serve.stop()
