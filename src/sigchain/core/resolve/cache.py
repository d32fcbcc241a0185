"""The resolver's cache (pure, told the time): answers to client questions with their
validation status, upstream replies, and delegations, in one LRU bounded by bytes.

TTLs follow RFC 2308 for negative answers (≤ the SOA's TTL and its MINIMUM field), are capped
(max/min, and a separate negative cap, as Unbound's cache-max-ttl / cache-min-ttl /
cache-max-negative-ttl), and bogus or failed results are kept only a few seconds.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.resolve.aggressive import ZoneDenials
from sigchain.core.resolve.ede import Ede
from sigchain.core.resolve.exchange import rcode_of
from sigchain.core.validate.anchors import Server
from sigchain.core.validate.verdict import Status, ZoneCut
from sigchain.core.zone.sharedname import lower_labels, shared
from sigchain.memo import Kept

ENTRY_OVERHEAD = 240  # bytes of bookkeeping per entry, beyond its records (measured roughly)


@dataclass(frozen=True)
class CacheLimits:
    max_bytes: int = 64 << 20
    max_ttl: int = 86400
    min_ttl: int = 0
    max_negative_ttl: int = 3600
    bogus_ttl: int = 60  # Unbound's val-bogus-ttl
    failure_ttl: int = 5  # no server answered: try again soon
    stale_window: int = 0  # RFC 8767 serve-stale: seconds past expiry an answer may serve; 0 off
    stale_ttl: int = 30  # the TTL a stale answer is given (RFC 8767 §4)


@dataclass
class Answer:
    """What a client question resolved to. `status` None: the resolution failed (SERVFAIL)."""

    rcode: int
    answer: tuple[dns.rrset.RRset, ...]
    authority: tuple[dns.rrset.RRset, ...]
    status: Status | None
    ede: tuple[Ede, ...]
    stored: int
    ttl: int
    size: int = 0
    wire: dict[Any, tuple[int, bytes]] = field(default_factory=dict)  # pre-rendered responses
    zone: str = ""  # the zone the data is from (for metrics and logs)
    stale_until: int | None = None  # a stale answer served again: the original window's end
    own_ttls: bool = False  # a fresh upstream answer: its RRsets keep their own TTLs when kept

    def expired(self, now: int) -> bool:
        return now >= self.stored + self.ttl

    def stale_end(self, window: int) -> int:
        return self.stale_until if self.stale_until is not None else self.stored + self.ttl + window

    def age(self, now: int) -> int:
        return max(0, now - self.stored)


@dataclass
class _Message:
    message: dns.message.Message  # shared, never changed: copies are made to count TTLs down
    stored: int
    ttl: int
    size: int
    # the copy counted down to one second, handed out for that whole second: the same RRset
    # objects, so that the validator's memo of verified signatures finds them
    aged: tuple[int, dns.message.Message] | None = None


@dataclass
class _Delegation:
    servers: tuple[Server, ...]
    stored: int
    ttl: int
    size: int = ENTRY_OVERHEAD


@dataclass
class _Denials:
    value: ZoneDenials
    stored: int
    ttl: int
    size: int = ENTRY_OVERHEAD


@dataclass
class _Insecure:
    stored: int
    ttl: int
    size: int = ENTRY_OVERHEAD


@dataclass
class _Keys:
    value: dns.rrset.RRset
    stored: int
    ttl: int
    size: int


def _name_size(name: dns.name.Name) -> int:
    return sum(map(len, name.labels)) + len(name.labels)


def _rdata_size(rd: dns.rdata.Rdata) -> int:
    """The rdata's wire length (uncompressed), remembered by the rdata object (held by the
    entry, so its id is not reused while kept; rdata are immutable): a cold name's answer
    carries its zone's SOA, NSEC/NSEC3 and RRSIG records, the same objects every time."""
    if rd.rdtype == RdataType.A:
        return 4
    kept = _SIZES.get(id(rd))
    if kept is not None and kept[0] is rd:
        return kept[1]
    return _SIZES.keep(id(rd), (rd, _wire_size(rd)))[1]


MAX_SIZES = 4096  # rdata sizes kept by `_rdata_size` (all dropped when full)
_SIZES: Kept[int, tuple[dns.rdata.Rdata, int]] = Kept(MAX_SIZES)


def _wire_size(rd: dns.rdata.Rdata) -> int:
    """The rdata's wire length (uncompressed), read off its fields for the types a resolver
    keeps most (rendering every record to count it cost more than keeping it)."""
    t = rd.rdtype
    if t == RdataType.A:
        return 4
    if t == RdataType.AAAA:
        return 16
    if t == RdataType.RRSIG:
        return 18 + _name_size(rd.signer) + len(rd.signature)  # type: ignore[attr-defined]
    if t == RdataType.NSEC:
        return _name_size(rd.next) + sum(2 + len(w[1]) for w in rd.windows)  # type: ignore[attr-defined]
    if t == RdataType.NSEC3:
        return (6 + len(rd.salt) + len(rd.next)  # type: ignore[attr-defined]
                + sum(2 + len(w[1]) for w in rd.windows))  # type: ignore[attr-defined]
    if t == RdataType.DNSKEY:
        return 4 + len(rd.key)  # type: ignore[attr-defined]
    if t == RdataType.DS:
        return 4 + len(rd.digest)  # type: ignore[attr-defined]
    if t == RdataType.SOA:
        return 20 + _name_size(rd.mname) + _name_size(rd.rname)  # type: ignore[attr-defined]
    return len(rd.to_digestable())


def _rrsets_size(rrsets: Iterable[dns.rrset.RRset]) -> int:
    return sum(_name_size(r.name) * len(r) + sum(_rdata_size(rd) + 10 for rd in r) for r in rrsets)


def negative(rcode: int, qtype: int, answer: Sequence[dns.rrset.RRset]) -> bool:
    """NXDOMAIN, or no RRset of the asked type at the end of the answer (NODATA)."""
    if rcode == dns.rcode.NXDOMAIN:
        return True
    if qtype == RdataType.ANY:  # any data at all answers it
        return not any(r.rdtype != RdataType.RRSIG for r in answer)
    return not any(r.rdtype == qtype for r in answer)


def data_ttl(rcode: int, qtype: int, answer: Sequence[dns.rrset.RRset],
             authority: Sequence[dns.rrset.RRset], limits: CacheLimits) -> int:
    """How long an answer may be kept: its smallest TTL; for a negative answer also the SOA's
    MINIMUM (RFC 2308 §5); capped."""
    ttls = [r.ttl for r in (*answer, *authority)]
    if negative(rcode, qtype, answer):
        soa = [r for r in authority if r.rdtype == RdataType.SOA]
        if not soa:
            return min(limits.failure_ttl, limits.max_negative_ttl)  # unprovable: keep briefly
        ttls += [rd.minimum for rd in soa[0]]  # type: ignore[attr-defined]
        return max(0, min(min(ttls), limits.max_negative_ttl))
    if not ttls:
        return limits.failure_ttl
    return max(limits.min_ttl, min(min(ttls), limits.max_ttl))


def kept_reply(qname: dns.name.Name, qtype: int, message: dns.message.Message) -> dns.message.QueryMessage:
    """What the cache keeps of an upstream reply: ID 0, its flags, RCODE, answer, authority and
    EDNS, under the question (qname, qtype, IN) — the Message `make_response(make_query(…))`
    gave, made directly (making the query and the response cost more than the rest)."""
    kept = dns.message.QueryMessage(id=0)
    kept.flags = message.flags
    kept.set_rcode(rcode_of(message))
    kept.question = [dns.rrset.RRset(qname, dns.rdataclass.IN, qtype)]
    kept.answer = list(message.answer)
    kept.authority = list(message.authority)
    _edns_from(kept, message)
    return kept


def _edns_from(kept: dns.message.Message, message: dns.message.Message) -> None:
    """`kept.use_edns(0, …)` with `message`'s EDNS flags, payload and options, if it has EDNS:
    for EDNS version 0 a copy of its OPT RRset, which is what that makes (use_edns builds the
    OPT record and its RRset anew, hashing the record, for every upstream reply)."""
    if message.opt is not None and message.edns == 0:
        kept.opt = message.opt.copy()  # its own RRset (a TTL set on it is the copy's alone)
        kept.request_payload = message.payload
        kept.pad = 0
    elif message.edns >= 0:
        kept.use_edns(0, message.ednsflags, message.payload, options=message.options)


_ZONE_KINDS = frozenset("zkin")  # delegations, validated keys, insecure zones, denials


class Cache:
    """One LRU for every kind of entry; `size` counts bytes, evicting the least recently used
    past `limits.max_bytes`. Not thread-safe: the resolver serialises access."""

    def __init__(self, limits: CacheLimits | None = None):
        self.limits = limits or CacheLimits()
        self._lru: OrderedDict[tuple[Any, ...], Answer | _Message | _Delegation | _Denials | _Keys | _Insecure] = \
            OrderedDict()
        self.size = 0
        self.stats: Counter[str] = Counter()
        # (kind, lower-cased labels) → LRU key, for the kinds kept per zone: a name's ancestors
        # are looked up on tuples of bytes instead of hashing a dnspython Name per ancestor
        self._zone_keys: dict[tuple[str, tuple[bytes, ...]], tuple[Any, ...]] = {}

    def __len__(self) -> int:
        return len(self._lru)

    # -- the LRU ------------------------------------------------------------------------------

    def _get(self, key: tuple[Any, ...], now: int) -> Any:
        entry = self._lru.get(key)
        if entry is None:
            return None
        if now >= entry.stored + entry.ttl:
            stale = key[0] == "a" and now < entry.stale_end(self.limits.stale_window)
            if not stale:
                self._drop(key)
            return None
        self._lru.move_to_end(key)
        return entry

    def stale_answer(self, qname: dns.name.Name, qtype: int, now: int) -> Answer | None:
        """An expired answer still inside the serve-stale window (RFC 8767), if it was secure
        or insecure — never bogus or a failure — and every RRSIG in it is still valid."""
        entry = self._lru.get(("a", qname, qtype))
        if not isinstance(entry, Answer) or entry.status not in (Status.SECURE, Status.INSECURE):
            return None
        if not entry.stored + entry.ttl <= now < entry.stale_end(self.limits.stale_window):
            return None
        sigs = [rd for r in (*entry.answer, *entry.authority) if r.rdtype == RdataType.RRSIG
                for rd in r]
        if any(not rd.inception <= now < rd.expiration for rd in sigs):  # type: ignore[attr-defined]
            return None
        return entry

    def _put(self, key: tuple[Any, ...], entry: Answer | _Message | _Delegation | _Denials | _Keys | _Insecure) -> None:
        if key in self._lru:
            self._drop(key)
        if entry.ttl <= 0 or entry.size > self.limits.max_bytes:
            return
        self._lru[key] = entry
        self.size += entry.size
        if key[0] in _ZONE_KINDS:
            self._zone_keys[(key[0], lower_labels(key[1]))] = key
        self._evict()

    def _evict(self) -> None:
        """Drop the least recently used entries until the cache is within its bound (never
        the last one: the entry just stored or used is the most recent)."""
        while self.size > self.limits.max_bytes and len(self._lru) > 1:
            old, _ = next(iter(self._lru.items()))
            self._drop(old)
            self.stats["evicted"] += 1

    def _drop(self, key: tuple[Any, ...]) -> None:
        entry = self._lru.pop(key, None)
        if entry is not None:
            self.size -= entry.size
            if key[0] in _ZONE_KINDS:
                self._zone_keys.pop((key[0], lower_labels(key[1])), None)

    def flush(self) -> None:
        self._lru.clear()
        self._zone_keys.clear()
        self.size = 0

    # -- answers to client questions ------------------------------------------------------------

    def answer(self, qname: dns.name.Name, qtype: int, now: int) -> Answer | None:
        entry: Answer | None = self._get(("a", qname, qtype), now)
        self.stats["hits" if entry is not None else "misses"] += 1
        return entry

    def store_answer(self, qname: dns.name.Name, qtype: int, entry: Answer) -> Answer:
        """Keep `entry`, its TTL capped by its status (bogus and failures briefly); its
        records' TTLs are lowered to the entry's so that they count down together, and raised
        to the `min_ttl` the entry was kept for (as Unbound's cache-min-ttl: a client is not
        told TTL 0 for data still served from the cache). A fresh positive answer's RRsets
        (`own_ttls`) keep their own TTLs instead (as Unbound's: RFC 2181 §5.2 asks for one
        TTL within an RRset, not across them), within `_own_ttls`' bounds; the entry still
        goes when its smallest runs out."""
        if entry.status is None:
            entry.ttl = min(entry.ttl, self.limits.failure_ttl)
        elif entry.status is Status.BOGUS:
            entry.ttl = min(entry.ttl, self.limits.bogus_ttl)
        floor = min(self.limits.min_ttl, entry.ttl)
        if (entry.own_ttls and entry.status in (Status.SECURE, Status.INSECURE)
                and not negative(entry.rcode, qtype, entry.answer)):
            entry.answer = _own_ttls(entry.answer, entry.ttl, self.limits.max_ttl, entry.stored)
        else:
            entry.answer = _capped(entry.answer, entry.ttl, floor)
        entry.authority = _capped(entry.authority, entry.ttl, floor)
        entry.size = _rrsets_size((*entry.answer, *entry.authority)) + ENTRY_OVERHEAD
        self._put(("a", qname, qtype), entry)
        return entry

    def rendered(self, qname: dns.name.Name, qtype: int, entry: Answer, key: Any,
                 wire: tuple[int, bytes]) -> None:
        """Keep a response rendered from `entry` (its `wire`, by `key`) and count its bytes
        against the bound while the entry is the one kept for (qname, qtype): up to a dozen
        renders (DO, CD, AD, EDNS, buffer sizes) may outweigh its records."""
        old = entry.wire.get(key)
        entry.wire[key] = wire
        delta = len(wire[1]) - (len(old[1]) if old is not None else 0)
        if self._lru.get(("a", qname, qtype)) is not entry:
            return
        entry.size += delta
        self.size += delta
        self._evict()

    # -- upstream replies -----------------------------------------------------------------------

    def message(self, qname: dns.name.Name, qtype: int, now: int) -> dns.message.Message | None:
        """An upstream reply kept earlier, its TTLs counted down to `now`."""
        entry: _Message | None = self._get(("m", qname, qtype), now)
        if entry is None:
            return None
        kept, age = entry.message, now - entry.stored
        if age <= 0:
            return kept
        if entry.aged is not None and entry.aged[0] == now:
            return entry.aged[1]
        m = dns.message.Message(id=0)
        m.flags = kept.flags
        m.question = kept.question
        _edns_from(m, kept)
        m.answer = [_aged(r, entry.ttl, age) for r in kept.answer]
        m.authority = [_aged(r, entry.ttl, age) for r in kept.authority]
        entry.aged = (now, m)
        return m

    def store_message(self, qname: dns.name.Name, qtype: int, message: dns.message.Message,
                      now: int) -> None:
        """Keep an upstream reply that answers (qname, qtype) — not a referral (delegations
        are kept by `store_delegation`) and never its additional section."""
        ttl = data_ttl(rcode_of(message), qtype, message.answer, message.authority, self.limits)
        kept = kept_reply(qname, qtype, message)
        size = _rrsets_size((*kept.answer, *kept.authority)) + ENTRY_OVERHEAD
        self._put(("m", qname, qtype), _Message(kept, now, ttl, size))

    def forget_messages(self, keys: Iterable[tuple[dns.name.Name, int]]) -> None:
        for qname, qtype in keys:
            self._drop(("m", qname, qtype))

    # -- delegations ----------------------------------------------------------------------------

    def _enclosing(self, kind: str, qname: dns.name.Name, now: int) -> Iterator[tuple[dns.name.Name, Any]]:
        """The entries of `kind` kept for `qname` and its ancestors, deepest first."""
        labels = lower_labels(qname)
        for i in range(len(labels) + 1):
            key = self._zone_keys.get((kind, labels[i:]))
            if key is not None:
                entry = self._get(key, now)
                if entry is not None:
                    yield shared(qname.labels[i:]), entry

    def delegations(self, qname: dns.name.Name, now: int) -> dict[dns.name.Name, tuple[Server, ...]]:
        """The known delegations that enclose `qname` (its ancestors' servers)."""
        return {name: entry.servers for name, entry in self._enclosing("z", qname, now)}

    # -- validated zone keys (as Unbound's key cache) ------------------------------------------

    def key_anchors(self, qname: dns.name.Name, now: int) -> list[dns.rrset.RRset]:
        """The validated DNSKEY RRsets kept for `qname`'s zones: trust anchors for the next
        validation, which then checks only the links below them."""
        return [entry.value for _, entry in self._enclosing("k", qname, now)]

    def store_key_anchor(self, dnskey: dns.rrset.RRset, ttl: int, now: int) -> None:
        ttl = min(ttl, self.limits.max_ttl)
        self._put(("k", dnskey.name), _Keys(dnskey, now, ttl, _rrsets_size((dnskey,)) + ENTRY_OVERHEAD))

    # -- zones proven insecure (as Unbound's null key entries) ----------------------------------

    def insecure_zone(self, qname: dns.name.Name, now: int) -> dns.name.Name | None:
        """The deepest zone enclosing `qname` whose parent proved, with validated NSEC/NSEC3,
        that it has no DS, while that proof may be kept: what is below it is insecure
        without fetching and checking the chain again."""
        for name, _ in self._enclosing("i", qname, now):
            return name
        return None

    def store_insecure(self, zone: dns.name.Name, ttl: int, now: int) -> None:
        self._put(("i", zone), _Insecure(now, max(0, min(ttl, self.limits.max_ttl))))

    # -- validated denial records (RFC 8198) ----------------------------------------------------

    def denials(self, qname: dns.name.Name, now: int) -> tuple[ZoneDenials, int] | None:
        """The denial records kept for the deepest signed zone above `qname`, and for how
        many more seconds they may be used."""
        for _, entry in self._enclosing("n", qname, now):
            return entry.value, entry.stored + entry.ttl - now
        return None

    def store_denials(self, zone: dns.name.Name, answer: Sequence[dns.rrset.RRset],
                      authority: Sequence[dns.rrset.RRset], chain: Sequence[ZoneCut],
                      now: int) -> None:
        """Keep a secure answer's NSEC/NSEC3 records (with their RRSIGs) for the zone, and the
        wildcard a positive answer was expanded from. An entry expires with its earliest
        record: records added later do not extend it, and one with a shorter TTL than the
        entry has left shortens it (no record is used past its own TTL)."""
        key = ("n", zone)
        entry: _Denials | None = self._get(key, now)
        soa = tuple(r for r in authority if r.name == zone and RdataType.SOA in (r.rdtype, r.covers))
        if entry is None:
            d = ZoneDenials(zone, soa, tuple(chain))
            d.add(authority)
            d.add_wildcard(answer)
            ttl = min(d.ttl(), self.limits.max_negative_ttl)
            entry = _Denials(d, now, ttl)
        else:
            added = [t for t in (entry.value.add(authority), entry.value.add_wildcard(answer))
                     if t is not None]
            if soa and not entry.value.soa:  # the first was a wildcard answer: no SOA came
                entry.value.soa = soa
                added.append(entry.value.ttl())
            if added:
                entry.ttl = min(entry.ttl, now - entry.stored + min(
                    *added, self.limits.max_negative_ttl))
            self._drop(key)
        rrsets = [r for pair in (*entry.value.records.values(), *entry.value.wildcards.values())
                  for r in pair[:2] if r is not None]
        entry.size = _rrsets_size(rrsets) + ENTRY_OVERHEAD
        self._put(key, entry)

    def store_delegation(self, zone: dns.name.Name, servers: Sequence[Server], ttl: int,
                         now: int) -> None:
        ttl = max(self.limits.min_ttl, min(ttl, self.limits.max_ttl))
        self._put(("z", zone), _Delegation(tuple(servers), now, ttl))


def _aged(r: dns.rrset.RRset, cap: int, age: int) -> dns.rrset.RRset:
    copy = r.copy()  # the rdata as they are: no re-hashing
    copy.ttl = max(0, min(r.ttl, cap) - age)
    return copy


def _own_ttls(rrsets: Sequence[dns.rrset.RRset], ttl: int, max_ttl: int,
              now: int) -> tuple[dns.rrset.RRset, ...]:
    """Each RRset at its own TTL, at most `max_ttl` and (RFC 4035 §5.3.3) its RRSIGs'
    original TTL and time to expiration (an RRSIG RRset as the RRset it covers); never below
    the entry's `ttl` (their smallest, or the min_ttl it is kept for)."""
    limit: dict[tuple[dns.name.Name, int], int] = {}
    for r in rrsets:
        if r.rdtype == RdataType.RRSIG:
            for rd in r:
                cap = min(rd.original_ttl, rd.expiration - now)  # type: ignore[attr-defined]
                key = (r.name, r.covers)
                limit[key] = min(limit.get(key, cap), cap)
    out = []
    for r in rrsets:
        own = min(r.ttl, max_ttl, limit.get(
            (r.name, r.covers if r.rdtype == RdataType.RRSIG else r.rdtype), r.ttl))
        own = max(ttl, own)
        if own != r.ttl:
            copy = r.copy()  # the rdata as they are: no re-hashing
            copy.ttl = own
            r = copy
        out.append(r)
    return tuple(out)


def _capped(rrsets: Iterable[dns.rrset.RRset], ttl: int, floor: int = 0) -> tuple[dns.rrset.RRset, ...]:
    """The RRsets with their TTLs within [floor, ttl]."""
    out = []
    for r in rrsets:
        if r.ttl > ttl or r.ttl < floor:
            copy = r.copy()  # the rdata as they are: no re-hashing
            copy.ttl = ttl if r.ttl > ttl else floor
            r = copy
        out.append(r)
    return tuple(out)
