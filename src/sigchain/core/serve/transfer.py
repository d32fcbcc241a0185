"""Zone transfers and NOTIFY, the pure part: differences between zone versions, which IXFR
answer to give, the message sequence of a transfer, and NOTIFY messages (who may transfer:
`acl.py`).

RFC 5936 (AXFR), RFC 1995 (IXFR), RFC 1996 (NOTIFY), RFC 1982 (serial arithmetic).

A zone version is a `ZoneIndex`; `diff(old, new)` gives the `Delta` between two versions as
sets of resource records (owner, TTL, rdata) deleted and added — the SOA apart, since the
IXFR framing carries it. A `History` keeps the latest deltas of one zone, consecutive in
serial; `plan_ixfr` picks the answer to an IXFR for serial N: just the SOA (the client is
current), the deltas from N to now condensed into one (RFC 1995 §5), or the whole zone
(AXFR-style, when N is not in the history). `xfr_messages` packs an answer's RRsets into
as many messages as needed, each rendered within 64 KiB with room kept for a TSIG record.

TSIG signing and verification are not done here: dnspython reads the wall clock for them,
so they live in the service (`services/xfrout.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.renderer
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.serve.acl import Acl
from sigchain.core.serve.index import ZoneIndex, ZoneSet
from sigchain.core.serve.message import error_response

RR = tuple[dns.name.Name, int, dns.rdata.Rdata]  # owner, TTL, rdata (type and covers inside)

XFR_MAX_MESSAGE = 65535  # RFC 1035 §4.2.2: the TCP length prefix is 16 bits
# Room kept in every transfer message for the TSIG record added when signing: owner and
# algorithm names (≤ 255 bytes each), fixed fields, a MAC of up to 64 bytes, other data.
TSIG_RESERVE = 640
DEFAULT_HISTORY = 20  # deltas kept per zone
_SERIAL_HALF = 2**31


# ---- serial numbers (RFC 1982) ---------------------------------------------------------------


def serial_gt(a: int, b: int) -> bool:
    """`a` is greater than `b` in 32-bit serial number arithmetic (RFC 1982 §3.2)."""
    a %= 2**32
    b %= 2**32
    return a != b and ((a < b and b - a > _SERIAL_HALF) or (a > b and a - b < _SERIAL_HALF))


def _serial(soa: dns.rrset.RRset) -> int:
    return int(soa[0].serial)  # type: ignore[attr-defined]


# ---- zone contents and their differences -----------------------------------------------------


def zone_rrsets(zone: ZoneIndex) -> Iterator[dns.rrset.RRset]:
    """Every RRset of the zone except the apex SOA — the body of an AXFR (RFC 5936 §2.2):
    data, glue and occluded records, RRSIGs, NSEC and the NSEC3 chain."""
    for name, node in zone.nodes.items():
        for rdtype, rrset in node.rrsets.items():
            if rdtype == RdataType.SOA and name == zone.origin:
                continue
            yield rrset
        yield from node.sigs.values()
    for node in zone.nsec3_nodes.values():
        yield from node.rrsets.values()
        yield from node.sigs.values()


def _node_rrsets(zone: ZoneIndex) -> Iterator[tuple[tuple[bytes, int, int], dns.rrset.RRset]]:
    """Every RRset of `zone` but the apex SOA, keyed by (owner's wire key or NSEC3 digest,
    type, covered type): read through the index's own keys, so that no owner Name is made
    (a reload's difference then costs no memory per RRset of the zone)."""
    okey, soa = zone.okey, RdataType.SOA
    for nodes, tag in ((zone.by_key, b"n"), (zone.nsec3_nodes, b"3")):
        for key, node in nodes.items():
            k = tag + key
            for rdtype, rrset in node.rrsets.items():
                if not (rdtype == soa and key == okey and tag == b"n"):
                    yield (k, rdtype, 0), rrset
            for covers, sig in node.sigs.items():
                yield (k, RdataType.RRSIG, covers), sig


def record_count(zone: ZoneIndex) -> int:
    """Resource records in the zone, SOA included."""
    return 1 + sum(len(r) for _, r in _node_rrsets(zone))


@dataclass(frozen=True)
class Delta:
    """The change from one zone version to the next: the two SOAs, and the other records
    deleted and added (a changed TTL is a deletion plus an addition, as in IXFR)."""

    old_soa: dns.rrset.RRset
    new_soa: dns.rrset.RRset
    deleted: frozenset[RR]
    added: frozenset[RR]

    @property
    def old_serial(self) -> int:
        return _serial(self.old_soa)

    @property
    def new_serial(self) -> int:
        return _serial(self.new_soa)

    @property
    def size(self) -> int:
        """Records carried by this delta in an IXFR, its two SOA pairs included."""
        return len(self.deleted) + len(self.added) + 2

    @property
    def empty(self) -> bool:
        return not self.deleted and not self.added


def _records(rrset: dns.rrset.RRset) -> Iterator[RR]:
    return ((rrset.name, rrset.ttl, rd) for rd in rrset)


def _same(a: dns.rrset.RRset, b: dns.rrset.RRset) -> bool:
    """Whether two versions of an RRset hold the same records with the same TTL; RRsets
    served from their wire compare their wire (the same sorted records: the same tails)."""
    tails_a, tails_b = getattr(a, "tails", None), getattr(b, "tails", None)
    if tails_a is not None and tails_a == tails_b:
        return True
    return a.ttl == b.ttl and a == b


def diff(old: ZoneIndex, new: ZoneIndex) -> Delta:
    """The `Delta` turning zone version `old` into `new` (RFC 1995 §4: deleted, then added).
    The two versions are walked by their index keys and an RRset's records are looked at
    only where it changed: no copy of either version is made."""
    if old.origin != new.origin:
        raise ValueError(f"cannot diff {old.origin} against {new.origin}")
    after = dict(_node_rrsets(new))  # keys and references only
    deleted: set[RR] = set()
    added: set[RR] = set()
    for key, rrset in _node_rrsets(old):
        other = after.pop(key, None)
        if other is None:
            deleted.update(_records(rrset))
        elif _same(rrset, other):
            continue
        elif other.ttl != rrset.ttl:
            deleted.update(_records(rrset))
            added.update(_records(other))
        else:
            deleted.update((rrset.name, rrset.ttl, rd) for rd in rrset if rd not in other)
            added.update((other.name, other.ttl, rd) for rd in other if rd not in rrset)
    for rrset in after.values():
        added.update(_records(rrset))
    return Delta(old.soa, new.soa, frozenset(deleted), frozenset(added))


def condense(deltas: Sequence[Delta]) -> Delta:
    """Consecutive deltas as one: what the first version lacks and the last one has, and
    the reverse (RFC 1995 §5, condensation). A record added then deleted cancels out."""
    if not deltas:
        raise ValueError("nothing to condense")
    deleted: set[RR] = set()
    added: set[RR] = set()
    for d in deltas:
        for rr in d.deleted:
            if rr in added:
                added.discard(rr)
            else:
                deleted.add(rr)
        for rr in d.added:
            if rr in deleted:
                deleted.discard(rr)
            else:
                added.add(rr)
    return Delta(deltas[0].old_soa, deltas[-1].new_soa, frozenset(deleted), frozenset(added))


@dataclass(frozen=True)
class History:
    """The latest deltas of one zone, oldest first, each starting where the previous ended."""

    deltas: tuple[Delta, ...] = ()

    @property
    def serials(self) -> tuple[int, ...]:
        """The serials whose IXFR can be answered incrementally, and the newest one."""
        if not self.deltas:
            return ()
        return tuple(d.old_serial for d in self.deltas) + (self.deltas[-1].new_serial,)

    @property
    def records(self) -> int:
        return sum(d.size for d in self.deltas)

    def record(
        self, delta: Delta, *, max_deltas: int = DEFAULT_HISTORY, max_records: int | None = None
    ) -> History:
        """A history with `delta` appended (restarting if it does not follow on), then the
        oldest deltas dropped past `max_deltas`, or past `max_records` records in all."""
        if max_deltas <= 0:
            return History()
        kept = self.deltas if self.deltas and self.deltas[-1].new_serial == delta.old_serial else ()
        deltas = (*kept, delta)[-max_deltas:]
        if max_records is not None:
            total = sum(d.size for d in deltas)
            while len(deltas) > 1 and total > max_records:
                total -= deltas[0].size
                deltas = deltas[1:]
            if total > max_records:
                deltas = ()
        return History(deltas)


@dataclass(frozen=True)
class IxfrPlan:
    """How to answer an IXFR (RFC 1995 §4): `current` — one SOA, the client is up to date;
    `incremental` — the condensed `delta`; `full` — the whole zone, AXFR-style."""

    kind: Literal["current", "incremental", "full"]
    reason: str
    delta: Delta | None = None


def plan_ixfr(zone: ZoneIndex, history: History, client_serial: int) -> IxfrPlan:
    """Choose the IXFR answer for a client at `client_serial` (RFC 1995 §2, §4, §5)."""
    current = zone.serial
    if client_serial == current:
        return IxfrPlan("current", f"serial {client_serial} is current")
    if serial_gt(client_serial, current):
        return IxfrPlan("current", f"serial {client_serial} is newer than ours ({current})")
    deltas = history.deltas
    if not deltas or deltas[-1].new_serial != current or deltas[-1].new_soa != zone.soa:
        return IxfrPlan("full", f"no differences kept for serial {client_serial}")
    for i in range(len(deltas) - 1, -1, -1):
        if deltas[i].old_serial == client_serial:
            delta = condense(deltas[i:])
            return IxfrPlan(
                "incremental", f"{len(deltas) - i} version(s) condensed: "
                f"{len(delta.deleted)} deleted, {len(delta.added)} added", delta)
    return IxfrPlan(
        "full", f"serial {client_serial} is not among the versions kept "
        f"({deltas[0].old_serial}..{current})")


# ---- answers as RRset sequences --------------------------------------------------------------


def group(records: Iterable[RR]) -> list[dns.rrset.RRset]:
    """Records gathered into RRsets (owner, type, covered type, TTL), in canonical order."""
    sets: dict[tuple[dns.name.Name, int, int, int], dns.rrset.RRset] = {}
    for name, ttl, rd in records:
        key = (name, rd.rdtype, rd.covers(), ttl)
        rrset = sets.get(key)
        if rrset is None:
            rrset = sets[key] = dns.rrset.RRset(name, rd.rdclass, rd.rdtype, rd.covers())
            rrset.update_ttl(ttl)
        rrset.add(rd)
    return [sets[k] for k in sorted(sets, key=lambda k: (k[0], k[1], k[2], k[3]))]


def axfr_answer(zone: ZoneIndex) -> Iterator[dns.rrset.RRset]:
    """SOA, every other record, SOA (RFC 5936 §2.2)."""
    yield zone.soa
    yield from zone_rrsets(zone)
    yield zone.soa


def ixfr_answer(delta: Delta) -> Iterator[dns.rrset.RRset]:
    """New SOA, then old SOA, deletions, new SOA, additions, and the new SOA last
    (RFC 1995 §4, one condensed difference sequence)."""
    yield delta.new_soa
    yield delta.old_soa
    yield from group(delta.deleted)
    yield delta.new_soa
    yield from group(delta.added)
    yield delta.new_soa


# ---- the message sequence --------------------------------------------------------------------


@dataclass(frozen=True)
class XfrMessage:
    """One message of a transfer: unsigned `wire`, and the same `message` for signing
    (`message.to_wire(want_shuffle=False)` renders `wire` byte for byte)."""

    message: dns.message.Message
    wire: bytes
    records: int


class _Packer:
    """Fills one message at a time with dnspython's renderer, as `Message.to_wire` will."""

    def __init__(self, query: dns.message.Message, udp_size: int, max_size: int, reserve: int):
        self.query = query
        self.question = query.question[0]
        self.edns = query.edns >= 0
        self.udp_size = udp_size
        self.max_size = max_size
        self.reserve = reserve + (11 if self.edns else 0)  # an OPT without options
        self.first = True
        self._new()

    def _new(self) -> None:
        self.r = dns.renderer.Renderer(self.query.id, dns.flags.QR | dns.flags.AA, self.max_size)
        self.r.reserve(self.reserve)
        if self.first:  # the question in the first message only, as BIND (RFC 5936 §2.2.1)
            self.r.add_question(self.question.name, self.question.rdtype, self.question.rdclass)
        self.batch: list[dns.rrset.RRset] = []

    def add(self, rrset: dns.rrset.RRset) -> bool:
        try:
            self.r.add_rrset(dns.renderer.ANSWER, rrset, want_shuffle=False)
        except dns.exception.TooBig:
            return False
        self.batch.append(rrset)
        return True

    def finish(self) -> XfrMessage:
        r = self.r
        r.release_reserved()
        if self.edns:
            r.add_edns(0, 0, self.udp_size)
        r.write_header()
        m = dns.message.Message(id=self.query.id)
        m.flags = dns.flags.QR | dns.flags.AA
        if self.first:
            m.question = [self.question]
        m.answer = self.batch
        if self.edns:
            m.use_edns(0, 0, self.udp_size)
        out = XfrMessage(m, r.get_wire(), sum(len(x) for x in self.batch))
        self.first = False
        self._new()
        return out


def xfr_messages(
    query: dns.message.Message,
    rrsets: Iterable[dns.rrset.RRset],
    *,
    udp_size: int,
    max_size: int = XFR_MAX_MESSAGE,
    reserve: int = TSIG_RESERVE,
) -> Iterator[XfrMessage]:
    """The answer `rrsets` packed into as few messages as fit within `max_size` each, less
    `reserve` bytes for a TSIG record (RFC 5936 §2.2). Lazy: one message per step, so a large
    zone streams. An RRset too large for one message is split record by record; a single
    record too large for a message raises `dns.exception.TooBig`."""
    p = _Packer(query, udp_size, max_size, reserve)
    for rrset in rrsets:
        if p.add(rrset):
            continue
        if p.batch:
            yield p.finish()
            if p.add(rrset):
                continue
        for rd in rrset:  # an RRset larger than a whole message
            single = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype, rrset.covers)
            single.update_ttl(rrset.ttl)
            single.add(rd)
            if p.add(single):
                continue
            if not p.batch:
                raise dns.exception.TooBig(f"a {rrset.name} record does not fit in one message")
            yield p.finish()
            if not p.add(single):
                raise dns.exception.TooBig(f"a {rrset.name} record does not fit in one message")
    yield p.finish()


# ---- NOTIFY (RFC 1996) -----------------------------------------------------------------------


def notify_message(zone: ZoneIndex, msg_id: int) -> dns.message.Message:
    """NOTIFY for `zone`: opcode NOTIFY, AA, the SOA as question and answer (RFC 1996 §3.7)."""
    m = dns.message.Message(id=msg_id)
    m.set_opcode(dns.opcode.NOTIFY)
    m.flags |= dns.flags.AA
    m.find_rrset(m.question, zone.origin, dns.rdataclass.IN, RdataType.SOA, create=True)
    m.answer = [zone.soa]
    return m


def notify_reply_status(request: dns.message.Message, reply: dns.message.Message) -> str | None:
    """The rcode name if `reply` answers NOTIFY `request` (same ID, QR, opcode NOTIFY, and the
    question echoed when present — RFC 1996 §4.7); None when it is not a reply to it."""
    if reply.id != request.id or not reply.flags & dns.flags.QR:
        return None
    if reply.opcode() != dns.opcode.NOTIFY:
        return None
    if reply.question and [(q.name, q.rdtype) for q in reply.question] != [
        (q.name, q.rdtype) for q in request.question
    ]:
        return None
    return dns.rcode.to_text(reply.rcode())


def notify_response(zones: ZoneSet, query: dns.message.Message) -> tuple[dns.message.Message, str]:
    """The answer to an incoming NOTIFY, as BIND gives it to a primary (RFC 1996 §3.7, §4.7):
    NOERROR + AA for a zone served here (we are its primary: nothing to do), NOTAUTH for any
    other zone, FORMERR without exactly one SOA question (NOTIMP for CDS/CSYNC, RFC 7477)."""
    udp_size = zones.udp_size
    if len(query.question) != 1:
        return error_response(query, dns.rcode.FORMERR, udp_size), "not exactly one question"
    q = query.question[0]
    if q.rdtype in (RdataType.CDS, RdataType.CSYNC):
        return error_response(query, dns.rcode.NOTIMP, udp_size), "NOTIFY(CDS/CSYNC) not handled"
    if q.rdtype != RdataType.SOA:
        return error_response(query, dns.rcode.FORMERR, udp_size), "question type is not SOA"
    if q.rdclass != dns.rdataclass.IN or q.name not in zones.zones:
        return error_response(query, dns.rcode.NOTAUTH, udp_size), "not authoritative"
    response = error_response(query, dns.rcode.NOERROR, udp_size)
    response.flags |= dns.flags.AA
    return response, "we are the primary"


# ---- the transfer decision -------------------------------------------------------------------


@dataclass(frozen=True)
class TransferDecision:
    """What to answer a zone transfer request with: an rcode-only response (`rcode` set), or
    the RRsets of the answer (`answer`) described by `kind` — AXFR, IXFR (incremental),
    AXFR-style IXFR, or IXFR SOA-only."""

    why: str
    rcode: int | None = None
    kind: str = ""
    zone: ZoneIndex | None = None
    answer: Sequence[dns.rrset.RRset] | Iterable[dns.rrset.RRset] = ()
    serials: tuple[int, int] | None = None  # (from, to) for IXFR


def decide_transfer(
    zones: ZoneSet,
    histories: Mapping[dns.name.Name, History],
    acls: Mapping[dns.name.Name, Acl],
    query: dns.message.Message,
    *,
    tcp: bool,
    client: str,
    key: dns.name.Name | None,
) -> TransferDecision:
    """AXFR/IXFR request → what to send, in BIND's order of checks (lib/ns/xfrout.c): one
    question (else FORMERR); the zone served here, exactly (else NOTAUTH); the ACL (else
    REFUSED); AXFR over UDP is FORMERR (RFC 5936 §4.2); an IXFR needs the client's SOA in the
    authority section (RFC 1995 §3); over UDP, or for a current client, the answer is one SOA
    (RFC 1995 §2 lets it say "use TCP"); otherwise `plan_ixfr` decides."""
    if len(query.question) != 1:
        return TransferDecision("not exactly one question", dns.rcode.FORMERR)
    q = query.question[0]
    zone = zones.zones.get(q.name) if q.rdclass == dns.rdataclass.IN else None
    if zone is None:
        return TransferDecision("non-authoritative zone", dns.rcode.NOTAUTH)
    acl = acls.get(zone.origin, Acl())
    if not acl.allows(client, key):
        return TransferDecision(f"denied (allow-transfer: {acl})", dns.rcode.REFUSED, zone=zone)
    if q.rdtype == RdataType.AXFR:
        if not tcp:
            return TransferDecision("attempted AXFR over UDP", dns.rcode.FORMERR, zone=zone)
        return TransferDecision("", kind="AXFR", zone=zone, answer=axfr_answer(zone))
    return _ixfr_decision(zone, histories.get(zone.origin, History()), query, tcp)


def _ixfr_decision(zone: ZoneIndex, history: History, query: dns.message.Message,
                   tcp: bool) -> TransferDecision:
    """An allowed IXFR: the client's SOA is required (RFC 1995 §3); one SOA over UDP or for
    a current client; else `plan_ixfr`'s incremental or AXFR-style answer."""
    client_soa = None
    for rrset in query.authority:
        if rrset.rdtype == RdataType.SOA and rrset.name == zone.origin and len(rrset) == 1:
            client_soa = rrset
    if client_soa is None:
        return TransferDecision("IXFR request missing SOA", dns.rcode.FORMERR, zone=zone)
    begin = _serial(client_soa)
    plan = plan_ixfr(zone, history, begin)
    serials = (begin, zone.serial)
    if plan.kind == "current" or not tcp:
        why = plan.reason if plan.kind == "current" else "IXFR over UDP: one SOA, use TCP"
        return TransferDecision(why, kind="IXFR SOA-only", zone=zone, answer=[zone.soa],
                                serials=serials)
    if plan.kind == "incremental":
        assert plan.delta is not None
        return TransferDecision(plan.reason, kind="IXFR", zone=zone,
                                answer=ixfr_answer(plan.delta), serials=serials)
    return TransferDecision(plan.reason, kind="AXFR-style IXFR", zone=zone,
                            answer=axfr_answer(zone), serials=serials)


# A history's change from one version to the next, as sent to forked workers: None when it
# is unchanged, ("append", delta, kept) when `delta` was recorded and the newest `kept`
# deltas are kept, ("whole", history) otherwise.
HistoryStep = tuple[str, Any, int] | tuple[str, "History"] | None


def history_step(old: History | None, new: History | None) -> HistoryStep:
    """The step that turns history `old` into `new` (see `HistoryStep`): small when `new` is
    `old` with one delta recorded (`History.record`), as it is after a change."""
    old = old if old is not None else History()
    new = new if new is not None else History()
    if len(new.deltas) == len(old.deltas) and all(a is b for a, b in zip(new.deltas, old.deltas, strict=True)):
        return None
    if new.deltas:
        *kept, last = new.deltas
        if not kept or (len(kept) <= len(old.deltas)
                        and all(a is b for a, b in zip(kept, old.deltas[-len(kept):], strict=True))):
            return ("append", last, len(new.deltas))
    return ("whole", new)


def after_step(old: History | None, step: HistoryStep) -> History:
    """History `old` after `step` (made by `history_step(old, new)`): `new`."""
    old = old if old is not None else History()
    if step is None:
        return old
    if step[0] == "append":
        _, delta, kept = step
        return History((*old.deltas, delta)[-kept:])
    return step[1]  # type: ignore[return-value, no-any-return]
