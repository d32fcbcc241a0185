"""The request side of zone transfers, TSIG and NOTIFY (services/xfrout.py) and the IXFR
history kept across reloads (services/authoritative.py), driven without sockets.

Oracles: dnspython's TSIG code verifies every signed response (chained MACs across the
messages of a transfer, RFC 8945 §5.3.1) with the client's copy of the key, and its
transfer client (`dns.xfr.Inbound`) applies AXFR/IXFR answers to a zone.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rrset
import dns.tsig
import dns.xfr
import dns.zone
import pytest

from sigchain.clock import FakeClock
from sigchain.core.serve.acl import Acl
from sigchain.core.serve.index import ZoneIndex, ZoneSet
from sigchain.core.serve.transfer import History, diff, zone_rrsets
from sigchain.edge.server import ListenAddress
from sigchain.services import zonefiles
from sigchain.services.authoritative import AuthoritativeService
from sigchain.services.serveconfig import ListenConfig, ServeConfig, ZoneConfig
from sigchain.services.xfrout import Primary
from tests.unit.test_transfer import ORIGIN, V1, V2, V3, _big_zone, _zone_records, records

N = dns.name.from_text
KEY = dns.tsig.Key("xfr-key.", base64.b64encode(b"k" * 32).decode(), "hmac-sha256")
OTHER = dns.tsig.Key("other-key.", base64.b64encode(b"o" * 32).decode(), "hmac-sha256")
WRONG = dns.tsig.Key("xfr-key.", base64.b64encode(b"w" * 32).decode(), "hmac-sha256")
KEYRING = {KEY.name: KEY, OTHER.name: OTHER}


def primary(acl: list[str]) -> Primary:
    return Primary({ORIGIN: Acl.parse(acl)}, KEYRING, FakeClock(1_800_000_000))


def wires(response: object) -> list[bytes]:
    assert response is not None
    return [response] if isinstance(response, bytes) else list(response)  # type: ignore[arg-type]


def transfer(p: Primary, zones: ZoneSet, q: dns.message.Message, *, tcp: bool = True,
             client: str = "127.0.0.1", histories: dict | None = None) -> list[bytes]:  # type: ignore[type-arg]
    return wires(p.handle(zones, histories or {}, q.to_wire(), tcp, client))


def apply(zone: dns.zone.Zone, q: dns.message.Message, out: Iterable[bytes]) -> int:
    """Apply a transfer as dnspython's client does, verifying TSIG when `q` was signed;
    returns the number of messages."""
    rdtype = q.question[0].rdtype
    serial = q.authority[0][0].serial if q.authority else None
    ctx = None
    n = 0
    with dns.xfr.Inbound(zone, rdtype, serial) as inbound:
        for w in out:
            r = dns.message.from_wire(w, keyring=q.keyring, request_mac=q.mac, xfr=True,
                                      origin=zone.from_wire_origin(), tsig_ctx=ctx, multi=True,
                                      one_rr_per_rrset=rdtype == dns.rdatatype.IXFR)
            ctx = r.tsig_ctx
            n += 1
            if inbound.process_message(r):
                break
    return n


def axfr_query(key: dns.tsig.Key | None = None) -> dns.message.Message:
    q = dns.message.make_query(ORIGIN, "AXFR")
    if key is not None:
        q.use_tsig(key)
    return q


def test_signed_axfr_over_many_messages_verifies_with_dnspython() -> None:
    zone = _big_zone(600)
    zones = ZoneSet([zone])
    p = primary(["key:xfr-key"])
    q = axfr_query(KEY)
    out = transfer(p, zones, q, client="192.0.2.1")  # the key alone allows it, from anywhere
    assert len(out) >= 3 and all(len(w) <= 65535 for w in out)
    target = dns.zone.Zone(ORIGIN, relativize=False)
    assert apply(target, q, out) == len(out)
    assert _zone_records(target) == records(zone) | {(ORIGIN, zone.soa.ttl, zone.soa[0])}
    assert all(dns.message.from_wire(w, keyring=False).had_tsig for w in out)  # each one signed
    # A forged middle message breaks the MAC chain.
    bad = list(out)
    bad[1] = bad[1][:-40] + bytes(b ^ 1 for b in bad[1][-40:-30]) + bad[1][-30:]
    with pytest.raises((dns.tsig.BadSignature, dns.exception.FormError)):
        apply(dns.zone.Zone(ORIGIN, relativize=False), q, bad)
    assert p.stats["AXFR"] == 1


def test_unsigned_and_wrongly_signed_requests() -> None:
    zones = ZoneSet([V3])
    p = primary(["127.0.0.3", "key:xfr-key"])
    # Address ACL: allowed unsigned from 127.0.0.3, refused from 127.0.0.1.
    ok = transfer(p, zones, axfr_query(), client="127.0.0.3")
    assert apply(dns.zone.Zone(ORIGIN, relativize=False), axfr_query(), ok) == 1
    refused = dns.message.from_wire(transfer(p, zones, axfr_query())[0])
    assert refused.rcode() == dns.rcode.REFUSED and not refused.had_tsig
    # Signed with another valid key: REFUSED, and the refusal is signed (RFC 8945 §5.3).
    q = axfr_query(OTHER)
    r = dns.message.from_wire(transfer(p, zones, q)[0], keyring=KEYRING, request_mac=q.mac)
    assert r.rcode() == dns.rcode.REFUSED and r.had_tsig
    # The right key name with a wrong secret: NOTAUTH, TSIG error BADSIG, no MAC (§5.2.2).
    bad = dns.message.from_wire(transfer(p, zones, axfr_query(WRONG))[0], keyring=False)
    assert bad.rcode() == dns.rcode.NOTAUTH and bad.tsig_error == dns.rcode.BADSIG
    assert bad.mac == b"" and bad.answer == []
    # A key the server does not know: BADKEY (§5.2.1).
    stranger = dns.tsig.Key("stranger.", base64.b64encode(b"s" * 32).decode())
    bad = dns.message.from_wire(transfer(p, zones, axfr_query(stranger))[0], keyring=False)
    assert bad.rcode() == dns.rcode.NOTAUTH and bad.tsig_error == dns.rcode.BADKEY
    # The same errors for an ordinary query.
    plain = dns.message.make_query("www.example.test.", "A")
    plain.use_tsig(WRONG)
    bad = dns.message.from_wire(transfer(p, zones, plain, tcp=False)[0], keyring=False)
    assert bad.rcode() == dns.rcode.NOTAUTH and bad.tsig_error == dns.rcode.BADSIG
    assert p.stats["tsig-badsig"] == 2 and p.stats["tsig-badkey"] == 1


def test_stale_signature_time_is_notauth_badtime_with_the_server_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    zones = ZoneSet([V3])
    p = primary(["key:xfr-key"])
    real = dns.message.time.time
    monkeypatch.setattr(dns.message.time, "time", lambda: real() - 3600)  # the client's clock
    q = axfr_query(KEY)
    wire = q.to_wire()
    monkeypatch.undo()
    r = dns.message.from_wire(wires(p.handle(zones, {}, wire, True, "127.0.0.1"))[0], keyring=False)
    assert r.rcode() == dns.rcode.NOTAUTH and r.tsig_error == dns.rcode.BADTIME
    assert r.mac != b""  # signed (RFC 8945 §5.2.3), with our time in Other Data
    assert r.tsig[0].other == (1_800_000_000).to_bytes(6, "big")
    assert p.stats["tsig-badtime"] == 1


def test_signed_plain_query_gets_a_signed_answer_and_plain_queries_stay_plain() -> None:
    zones = ZoneSet([V3])
    p = primary([])
    q = dns.message.make_query("www.example.test.", "A", want_dnssec=True)
    q.use_tsig(KEY)
    r = dns.message.from_wire(transfer(p, zones, q, tcp=False)[0], keyring=KEYRING, request_mac=q.mac)
    assert r.had_tsig and r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert {rd.to_text() for rd in r.answer[0]} == {"192.0.2.10", "192.0.2.11", "192.0.2.12"}
    unsigned = dns.message.make_query("www.example.test.", "A")
    r = dns.message.from_wire(transfer(p, zones, unsigned, tcp=False)[0])
    assert not r.had_tsig and r.id == unsigned.id
    # Transfers stay refused when nothing allows them, even signed.
    r = dns.message.from_wire(transfer(p, zones, axfr_query(KEY))[0], keyring=False)
    assert r.rcode() == dns.rcode.REFUSED and r.had_tsig


def test_ixfr_over_tcp_and_udp_with_history() -> None:
    zones = ZoneSet([V3])
    histories = {ORIGIN: History().record(diff(V1, V2)).record(diff(V2, V3))}
    p = primary(["key:xfr-key"])
    client = dns.zone.from_text(zone_text(V1), origin=ORIGIN, relativize=False)  # at version 1
    q, _ = dns.xfr.make_query(client, keyring={KEY.name: KEY}, keyname=KEY.name)
    assert q.question[0].rdtype == dns.rdatatype.IXFR
    out = transfer(p, zones, q, histories=histories)
    apply(client, q, out)
    assert _zone_records(client) == records(V3) | {(ORIGIN, 3600, V3.soa[0])}
    assert p.stats["IXFR"] == 1
    # Over UDP: one SOA, signed (RFC 1995 §2: the client retries over TCP).
    out = transfer(p, zones, q, tcp=False, histories=histories)
    r = dns.message.from_wire(out[0], keyring={KEY.name: KEY}, request_mac=q.mac)
    assert len(out) == 1 and [x.rdtype for x in r.answer] == [dns.rdatatype.SOA]
    assert r.answer[0][0].serial == 3
    # AXFR over UDP, allowed: FORMERR.
    r = dns.message.from_wire(transfer(p, zones, axfr_query(KEY), tcp=False)[0], keyring=False)
    assert r.rcode() == dns.rcode.FORMERR


def test_incoming_notify_gets_a_notify_response() -> None:
    zones = ZoneSet([V3])
    p = primary([])
    q = dns.message.make_query(ORIGIN, "SOA")
    q.set_opcode(dns.opcode.NOTIFY)
    q.use_tsig(KEY)
    r = dns.message.from_wire(transfer(p, zones, q, tcp=False)[0], keyring=KEYRING, request_mac=q.mac)
    assert r.opcode() == dns.opcode.NOTIFY and r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA and r.flags & dns.flags.QR and r.had_tsig
    q = dns.message.make_query("example.org.", "SOA")
    q.set_opcode(dns.opcode.NOTIFY)
    r = dns.message.from_wire(transfer(p, zones, q, tcp=False)[0])
    assert r.rcode() == dns.rcode.NOTAUTH


def test_outgoing_notify_signed_and_its_reply_checked() -> None:
    p = primary([])
    wire, check = p.notify_request(V3, KEY.name, msg_id=777)
    request = dns.message.from_wire(wire, keyring=KEYRING)  # verifies our signature
    assert request.opcode() == dns.opcode.NOTIFY and request.had_tsig and request.id == 777
    reply = dns.message.make_response(request)
    assert check(reply.to_wire()) == "NOERROR"
    forged = dns.message.make_response(request)
    forged.use_tsig(WRONG)
    forged.request_mac = request.mac
    assert check(forged.to_wire()) == "reply with a bad TSIG signature"
    other = dns.message.make_response(request)
    other.id = 778
    assert check(other.to_wire()) is None and check(b"junk") is None


def zone_text(zone: ZoneIndex) -> str:
    return "\n".join(r.to_text() for r in [zone.soa, *zone_rrsets(zone)]) + "\n"


def _write(path: Path, zone: ZoneIndex) -> None:
    path.write_text(zone_text(zone))


def test_reload_keeps_an_ixfr_history_and_serves_condensed_deltas(tmp_path: Path) -> None:
    live = tmp_path / "example.test.zone"
    _write(live, V1)
    config = ServeConfig(
        (ZoneConfig(ORIGIN, str(live), Acl.parse(["127.0.0.1"])),),
        (ListenConfig(ListenAddress("127.0.0.1", 5300), (ORIGIN,)),),
        ixfr_history=20)
    service = AuthoritativeService(config)
    service.load_all()
    for version in (V2, V3):
        _write(live, version)
        live.touch()
        outcome, changed = service._reload()
        assert outcome == {"example.test.": f"serial {version.serial}"} and changed == [ORIGIN]
    assert service.served.histories[ORIGIN].serials == (1, 2, 3)
    q = dns.message.make_query(ORIGIN, "IXFR")
    q.authority = [V1.soa]
    out = wires(service.handle(q.to_wire(), True, "127.0.0.1"))
    r = dns.message.from_wire(out[0], xfr=True, one_rr_per_rrset=True)
    serials = [x[0].serial for x in r.answer if x.rdtype == dns.rdatatype.SOA]
    assert serials == [3, 1, 3, 3]  # one condensed difference sequence (RFC 1995 §4)
    # A version with a lower serial: no NOTIFY, history dropped, IXFR falls back to AXFR-style.
    _write(live, V1)
    outcome, changed = service._reload()
    assert changed == [] and service.served.histories[ORIGIN].serials == ()
    q.authority = [V2.soa]  # a client newer than us gets our SOA alone (RFC 1995 §2)
    r = dns.message.from_wire(wires(service.handle(q.to_wire(), True, "127.0.0.1"))[0], xfr=True)
    assert [x[0].serial for x in r.answer] == [1]
    q.authority = [dns.rrset.from_text(ORIGIN, 0, "IN", "SOA", "ns1. hostmaster. 0 1 1 1 1")]
    r = dns.message.from_wire(wires(service.handle(q.to_wire(), True, "127.0.0.1"))[0], xfr=True)
    assert r.answer[0][0].serial == 1 and r.answer[1].rdtype != dns.rdatatype.SOA  # AXFR-style


def test_a_file_replaced_while_it_loads_is_read_again_at_the_next_reload(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The content hash that spares a reload its verification must be of what is served: a
    file replaced between hashing and reading is not remembered, so a later reload of the
    first content is loaded, not taken for "unchanged"."""
    live = tmp_path / "example.test.zone"
    _write(live, V1)
    config = ServeConfig((ZoneConfig(ORIGIN, str(live), Acl.parse([])),),
                         (ListenConfig(ListenAddress("127.0.0.1", 5300), (ORIGIN,)),))
    service = AuthoritativeService(config)
    real = zonefiles.load_checked

    def replaced_meanwhile(*args: object) -> object:
        newer = tmp_path / "newer.zone"
        _write(newer, V2)
        os.replace(newer, live)  # after the hash, before the read
        return real(*args)

    monkeypatch.setattr(zonefiles, "load_checked", replaced_meanwhile)
    service.load_all()
    monkeypatch.setattr(zonefiles, "load_checked", real)
    assert service.indexes[ORIGIN].serial == V2.serial
    _write(live, V1)  # the content that was hashed at start-up
    outcome, _ = service._reload()
    assert outcome == {"example.test.": f"serial {V1.serial}"}
    assert service.indexes[ORIGIN].serial == V1.serial
