"""The primary's side of the protocol around plain answers: TSIG (RFC 8945), zone transfers
out (AXFR, RFC 5936; IXFR, RFC 1995) and NOTIFY (RFC 1996), in front of the answer function.

Plain queries go straight to `core.serve.fastpath` (its memoised hot path). Everything else — a
TSIG-signed message, AXFR/IXFR, NOTIFY — is parsed here with the keyring: signatures are
verified and answers signed by dnspython (`dns.message` keyring support, `dns.tsig`), which
reads the wall clock for the TSIG time check itself. A request whose signature does not
verify gets NOTAUTH with the TSIG error (BADKEY, BADSIG, BADTIME), as BIND answers it.
The transfer decisions and message packing are pure (`core.transfer`).
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass

import dns.entropy
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig
from dns.rdatatype import RdataType

from sigchain.clock import Clock
from sigchain.core.serve.acl import Acl
from sigchain.core.serve.fastpath import plain_query, respond_plain
from sigchain.core.serve.index import ZoneIndex, ZoneSet
from sigchain.core.serve.message import (
    answer,
    error_response,
    fitting,
    formerr,
    render,
    size_limit,
    truncated,
)
from sigchain.core.serve.transfer import (
    XFR_MAX_MESSAGE,
    History,
    TransferDecision,
    XfrMessage,
    decide_transfer,
    notify_message,
    notify_reply_status,
    notify_response,
    xfr_messages,
)
from sigchain.edge.server import Response

log = logging.getLogger("sigchain.xfrout")

_XFR = (RdataType.AXFR, RdataType.IXFR)


@dataclass(frozen=True)
class Served:
    """One consistent snapshot for the handlers: the zone set of each listener (in config
    order) and each zone's IXFR history. Replaced whole, never changed."""

    sets: tuple[ZoneSet, ...]
    histories: Mapping[dns.name.Name, History]


# (zones, the parsed and TSIG-verified UPDATE, its wire, over TCP, client) → the reply
UpdateHook = Callable[[ZoneSet, dns.message.Message, bytes, bool, str],
                      "bytes | Awaitable[bytes | None] | None"]

_TSIG_ERRORS = {dns.rcode.BADSIG: "BADSIG", dns.rcode.BADKEY: "BADKEY", dns.rcode.BADTIME: "BADTIME"}


def _key_text(name: dns.name.Name | None) -> str:
    return name.to_text(omit_final_dot=True) if name is not None else ""


class Primary:
    """Answers one request: plain answers, signed answers, transfers, NOTIFY, TSIG errors."""

    def __init__(self, acls: Mapping[dns.name.Name, Acl],
                 keyring: Mapping[dns.name.Name, dns.tsig.Key], clock: Clock):
        self.acls = dict(acls)
        self.keyring = dict(keyring)
        self.clock = clock
        self.stats: Counter[str] = Counter()  # outcomes, for logs and tests
        # RFC 2136 UPDATE (services.updatein); without it, updates get what they got before.
        self.update: UpdateHook | None = None

    # ---- dispatch ----------------------------------------------------------------------------

    def handle(self, zones: ZoneSet, histories: Mapping[dns.name.Name, History], wire: bytes,
               tcp: bool, client: str) -> Response:
        """The listeners' handler (see `edge.server.Handler`)."""
        fast = plain_query(wire)
        if fast is not None and fast[1] not in _XFR:
            return respond_plain(zones, wire, fast, tcp=tcp)
        if len(wire) < 12 or wire[2] & 0x80:
            return respond_plain(zones, wire, None, tcp=tcp)  # no answer to a response
        try:
            query = dns.message.from_wire(wire, keyring=self.keyring)
        except (dns.message.UnknownTSIGKey, dns.tsig.BadKey, dns.tsig.BadAlgorithm):
            return self._tsig_error(zones, wire, tcp, client, dns.rcode.BADKEY)
        except dns.tsig.BadSignature:
            return self._tsig_error(zones, wire, tcp, client, dns.rcode.BADSIG)
        except dns.tsig.BadTime:
            return self._tsig_error(zones, wire, tcp, client, dns.rcode.BADTIME)
        except Exception:  # malformed: the answer function's FORMERR
            return respond_plain(zones, wire, None, tcp=tcp)
        opcode = query.opcode()
        if opcode == dns.opcode.NOTIFY:
            return self._notify_in(zones, query, tcp, client)
        if opcode == dns.opcode.UPDATE and self.update is not None:
            self.stats["update"] += 1
            return self.update(zones, query, wire, tcp, client)  # type: ignore[return-value]
        if opcode == dns.opcode.QUERY and len(query.question) == 1 and (
                query.question[0].rdtype in _XFR):
            return self._transfer(zones, histories, query, tcp, client)
        if not query.had_tsig:
            return respond_plain(zones, wire, None, tcp=tcp)
        self.stats["signed-query"] += 1
        return self._single(zones, answer(zones, query, tcp=tcp), query, tcp)

    # ---- single responses --------------------------------------------------------------------

    def _single(self, zones: ZoneSet, response: dns.message.Message,
                query: dns.message.Message, tcp: bool) -> bytes:
        """One response within the size limit; TSIG-signed when the request was (RFC 8945 §5.3)."""
        limit = size_limit(zones, query, tcp)
        if not query.had_tsig:
            return render(response, limit)
        for candidate in (*fitting(response), truncated(response)):
            candidate.use_tsig(query.keyring)
            candidate.request_mac = query.mac or b""
            try:
                return candidate.to_wire(max_size=limit)
            except dns.exception.TooBig:
                continue
        raise dns.exception.TooBig("a signed response does not fit even truncated")

    def _tsig_error(self, zones: ZoneSet, wire: bytes, tcp: bool, client: str,
                    error: int) -> bytes | None:
        """NOTAUTH with the TSIG error: unsigned for BADKEY/BADSIG (RFC 8945 §5.2.1-5.2.2),
        signed with the server's time in Other Data for BADTIME (§5.2.3)."""
        try:
            query = dns.message.from_wire(wire, keyring=False)  # read, do not verify
        except Exception:
            return formerr(wire)
        if query.flags & dns.flags.QR or not query.had_tsig:
            return None
        assert query.tsig is not None
        tsig = query.tsig[0]
        name = query.tsig.name
        what = _TSIG_ERRORS.get(error, str(error))  # 16 is BADSIG here, not BADVERS
        log.warning("client %s: request has invalid signature: TSIG %s: %s", client,
                    _key_text(name), what)
        self.stats[f"tsig-{what.lower()}"] += 1
        response = error_response(query, dns.rcode.NOTAUTH, zones.udp_size)
        now = self.clock.now()
        key = self.keyring.get(name)
        if error == dns.rcode.BADTIME and key is not None:
            response.use_tsig(key, tsig_error=error,
                              other_data=struct.pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF))
            response.request_mac = tsig.mac  # type: ignore[attr-defined]
        else:
            rdata = dns.rdtypes.ANY.TSIG.TSIG(
                dns.rdataclass.ANY, dns.rdatatype.TSIG, tsig.algorithm,  # type: ignore[attr-defined]
                now, tsig.fudge, b"", tsig.original_id, error, b"",  # type: ignore[attr-defined]
            )
            response.tsig = dns.rrset.from_rdata(name, 0, rdata)
        return response.to_wire(max_size=size_limit(zones, query, tcp))

    # ---- NOTIFY ------------------------------------------------------------------------------

    def _notify_in(self, zones: ZoneSet, query: dns.message.Message, tcp: bool,
                   client: str) -> bytes:
        response, why = notify_response(zones, query)
        zone = query.question[0].name.to_text() if query.question else "?"
        signed = f": TSIG {_key_text(query.keyname)}" if query.had_tsig else ""
        log.info("client %s: received NOTIFY for zone %s%s: %s (%s)", client, zone, signed,
                 dns.rcode.to_text(response.rcode()), why)
        self.stats["notify-in"] += 1
        return self._single(zones, response, query, tcp)

    def notify_request(self, zone: ZoneIndex, key_name: dns.name.Name | None,
                       msg_id: int | None = None) -> tuple[bytes, Callable[[bytes], str | None]]:
        """A NOTIFY for `zone` (signed with `key_name` if given) and the check of a reply,
        which returns the status to log, or None for a datagram that is not the reply."""
        request = notify_message(zone, dns.entropy.random_16() if msg_id is None else msg_id)
        key = self.keyring[key_name] if key_name is not None else None
        if key is not None:
            request.use_tsig(key)
        wire = request.to_wire()

        def check(data: bytes) -> str | None:
            if len(data) < 12 or data[:2] != wire[:2]:
                return None
            try:
                reply = dns.message.from_wire(
                    data, keyring=key, request_mac=request.mac if key is not None else b"")
            except dns.tsig.PeerError as exc:
                return f"NOTAUTH (TSIG error: {type(exc).__name__})"
            except (dns.tsig.BadSignature, dns.tsig.BadKey, dns.tsig.BadTime,
                    dns.message.UnknownTSIGKey):
                return "reply with a bad TSIG signature"
            except Exception:
                return None
            return notify_reply_status(request, reply)

        return wire, check

    # ---- zone transfers ----------------------------------------------------------------------

    def _transfer(self, zones: ZoneSet, histories: Mapping[dns.name.Name, History],
                  query: dns.message.Message, tcp: bool, client: str) -> Response:
        key = query.keyname if query.had_tsig else None
        d = decide_transfer(zones, histories, self.acls, query, tcp=tcp, client=client, key=key)
        q = query.question[0]
        who = f"client {client}" + (f" (TSIG {_key_text(key)})" if key is not None else "")
        qtype = dns.rdatatype.to_text(q.rdtype)
        if d.rcode is not None:
            level = logging.WARNING if d.rcode == dns.rcode.REFUSED else logging.INFO
            log.log(level, "%s: %s of zone %s: %s: %s", who, qtype, q.name, d.why,
                    dns.rcode.to_text(d.rcode))  # type: ignore[arg-type]
            self.stats[f"{qtype.lower()}-{dns.rcode.to_text(d.rcode).lower()}"] += 1  # type: ignore[arg-type]
            return self._single(zones, error_response(query, d.rcode, zones.udp_size), query, tcp)
        assert d.zone is not None
        serials = f"serial {d.serials[0]} -> {d.serials[1]}" if d.serials else f"serial {d.zone.serial}"
        log.info("%s: %s of zone %s started (%s%s)", who, d.kind, d.zone.origin, serials,
                 f"; {d.why}" if d.why else "")
        messages = xfr_messages(query, d.answer, udp_size=zones.udp_size)
        if not tcp:  # only the one-SOA IXFR answer comes here
            self.stats[d.kind] += 1
            return self._single(zones, next(messages).message, query, tcp)
        return self._stream(messages, query, d, who)

    def _stream(self, messages: Iterator[XfrMessage], query: dns.message.Message,
                d: TransferDecision, who: str) -> Iterator[bytes]:
        """The transfer's messages on the wire, each TSIG-signed when the request was, the
        MACs chained from message to message (RFC 8945 §5.3.1)."""
        ctx = None
        count = records = 0
        for xm in messages:
            if query.had_tsig:
                m = xm.message
                m.use_tsig(query.keyring)
                m.request_mac = query.mac or b""
                wire = m.to_wire(max_size=XFR_MAX_MESSAGE, multi=True, tsig_ctx=ctx,
                                want_shuffle=False)
                ctx = m.tsig_ctx
            else:
                wire = xm.wire
            count += 1
            records += xm.records
            yield wire
        self.stats[d.kind] += 1
        assert d.zone is not None
        log.info("%s: %s of zone %s ended: %d message(s), %d record(s)", who, d.kind,
                 d.zone.origin, count, records)
