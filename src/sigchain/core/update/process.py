"""RFC 2136 §3 (pure): an UPDATE message checked in the RFC's order — zone section (FORMERR,
NOTAUTH), permission (REFUSED, decided by the caller from the ACL and TSIG, checked before the
prerequisites as BIND does so that a stranger learns nothing of the zone), prerequisites
(§3.2), the update section's prescan (§3.4.1) — then applied (§3.4.2) to a copy of the
zone's RRsets. The zone is never touched: the result is the change set, all or nothing."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.update
from dns.rdatatype import RdataType

from sigchain.core.dnssec.rrsig import serial_lt
from sigchain.core.update.changes import ChangeSet, ZoneData
from sigchain.core.zone.records import Key, RRsetRec, key_of, make_rrset, type_text
from sigchain.core.zone.shape import clashes_with_cname

# Records the signer makes: a client may not write them (BIND: "explicit NSEC updates are not
# allowed in secure zones", REFUSED).
SIGNER_MADE = frozenset({RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3, RdataType.NSEC3PARAM})
# Records the key policy makes: refused unless the policy lets clients edit keys.
KEY_RECORDS = frozenset({RdataType.DNSKEY, RdataType.CDS, RdataType.CDNSKEY})
_NOT_DELETABLE_BY_TYPE = frozenset({RdataType.AXFR, RdataType.IXFR, RdataType.MAILA,
                                    RdataType.MAILB})
_SINGLETONS = frozenset({RdataType.CNAME, RdataType.DNAME})  # an add replaces the one there
_NEVER_ADDED = frozenset({RdataType.MD, RdataType.MF})  # RFC 1123 §5.2.11 (BIND ignores them)


@dataclass(frozen=True)
class UpdatePolicy:
    """What clients may change beyond ordinary data: with `client_keys`, DNSKEY, CDS and
    CDNSKEY (a zone whose keys no policy manages, or a multi-signer peer's key); with
    `max_ttl` (the key policy's max-zone-ttl), no record with a longer TTL."""

    client_keys: bool = False
    max_ttl: int | None = None


@dataclass(frozen=True)
class UpdateResult:
    """The rcode to answer with; on NOERROR the change set (empty when the update changed
    nothing, which RFC 2136 §3.4.2 makes a success); `reason` is one line for the log."""

    rcode: int
    changes: ChangeSet = field(default_factory=ChangeSet)
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.rcode == dns.rcode.NOERROR


def _fail(rcode: int, reason: str) -> UpdateResult:
    return UpdateResult(rcode, ChangeSet(), reason)


def parse(wire: bytes) -> dns.update.UpdateMessage | None:
    """The UPDATE message in `wire`, or None when it is malformed (answer FORMERR). A TSIG
    record is read but not checked: the caller checks it (dnspython reads the clock to)."""
    try:
        msg = dns.message.from_wire(wire, keyring=False)
    except (dns.exception.DNSException, ValueError, UnicodeError):
        return None
    return msg if isinstance(msg, dns.update.UpdateMessage) else None


def zone_name(msg: dns.update.UpdateMessage) -> dns.name.Name | None:
    """The zone an update names (its zone section), or None when the section is malformed."""
    zsec = msg.zone
    if len(zsec) != 1 or zsec[0].rdtype != RdataType.SOA:
        return None
    return zsec[0].name


def process(
    msg: dns.update.UpdateMessage, zone: ZoneData, origin: dns.name.Name, allowed: bool,
    policy: UpdatePolicy = UpdatePolicy(),
) -> UpdateResult:
    """Check `msg` against `zone` (origin `origin`) and compute what it changes. `allowed` is
    the caller's verdict on the sender (allow-update ACL, TSIG key): REFUSED when false."""
    zname = zone_name(msg)
    if zname is None:
        return _fail(dns.rcode.FORMERR, "the zone section must hold exactly one SOA question")
    if zname != origin or msg.zone[0].rdclass != dns.rdataclass.IN:
        return _fail(dns.rcode.NOTAUTH, f"not authoritative for {zname}")
    if not allowed:
        return _fail(dns.rcode.REFUSED, f"update for {origin} denied")
    failed = _prerequisites(msg.prerequisite, zone, origin)
    if failed is None:
        failed = _prescan(msg.update, origin, policy)
    if failed is not None:
        return failed
    work = _Work(zone)
    for rr in msg.update:
        _apply(work, rr, zone.okey)
    for key in list(work.changed):  # RFC 3658 §2.2: a DS left without NS goes (as BIND)
        types = work.types(key)
        if RdataType.DS in types and (RdataType.NS not in types or key == zone.okey):
            work.put(key, RdataType.DS, None)
    return UpdateResult(dns.rcode.NOERROR, work.changeset())


def _prerequisites(
    rrsets: Iterable[dns.rrset.RRset], zone: ZoneData, origin: dns.name.Name
) -> UpdateResult | None:
    """RFC 2136 §3.2, in order; value-dependent RRset checks after the loop (§3.2.3)."""
    wanted: dict[tuple[Key, int], set[bytes]] = {}
    owners: dict[Key, str] = {}
    for rr in rrsets:
        name, rdtype = rr.name, rr.rdtype
        what = f"prerequisite {name} {type_text(rdtype)}"
        if rr.ttl != 0:
            return _fail(dns.rcode.FORMERR, f"{what}: TTL must be 0")
        if not name.is_subdomain(origin):
            return _fail(dns.rcode.NOTZONE, f"{what}: not in zone {origin}")
        key = key_of(name)
        if rr.deleting == dns.rdataclass.ANY:
            if rdtype == RdataType.ANY and not zone.types(key):
                return _fail(dns.rcode.NXDOMAIN, f"{what}: name not in use")
            if rdtype != RdataType.ANY and zone.rrset(key, rdtype) is None:
                return _fail(dns.rcode.NXRRSET, f"{what}: RRset does not exist")
        elif rr.deleting == dns.rdataclass.NONE:
            if rdtype == RdataType.ANY and zone.types(key):
                return _fail(dns.rcode.YXDOMAIN, f"{what}: name in use")
            if rdtype != RdataType.ANY and zone.rrset(key, rdtype) is not None:
                return _fail(dns.rcode.YXRRSET, f"{what}: RRset exists")
        elif rr.rdclass == dns.rdataclass.IN and not dns.rdatatype.is_metatype(rdtype):
            wanted.setdefault((key, rdtype), set()).update(rd.to_digestable() for rd in rr)
            owners[key] = name.to_text()
        else:
            return _fail(dns.rcode.FORMERR, f"{what}: bad class or type")
    for (key, rdtype), wires in wanted.items():
        have = zone.rrset(key, rdtype)
        if have is None or set(have.wires) != wires:
            return _fail(dns.rcode.NXRRSET,
                         f"prerequisite {owners[key]} {type_text(rdtype)}: RRset differs")
    return None


def _prescan(
    rrsets: Iterable[dns.rrset.RRset], origin: dns.name.Name, policy: UpdatePolicy
) -> UpdateResult | None:
    """RFC 2136 §3.4.1, and the DNSSEC records the signer owns (REFUSED, as BIND)."""
    for rr in rrsets:
        name, rdtype = rr.name, rr.rdtype
        what = f"update {name} {type_text(rdtype)}"
        if not name.is_subdomain(origin):
            return _fail(dns.rcode.NOTZONE, f"{what}: not in zone {origin}")
        if rr.deleting is None:
            bad = rr.rdclass != dns.rdataclass.IN or dns.rdatatype.is_metatype(rdtype)
        elif rr.deleting == dns.rdataclass.ANY:
            bad = rr.ttl != 0 or rdtype in _NOT_DELETABLE_BY_TYPE
        else:
            bad = rr.ttl != 0 or dns.rdatatype.is_metatype(rdtype)
        if bad:
            return _fail(dns.rcode.FORMERR, f"{what}: bad class, type or TTL")
        if rdtype in SIGNER_MADE:
            return _fail(dns.rcode.REFUSED,
                         f"{what}: explicit {type_text(rdtype)} updates are not allowed in a "
                         "signed zone")
        if rr.deleting is None and policy.max_ttl is not None and rr.ttl > policy.max_ttl:
            return _fail(dns.rcode.REFUSED, f"{what}: TTL {rr.ttl} exceeds the key policy's "
                         f"max-zone-ttl {policy.max_ttl}")
        if rdtype in KEY_RECORDS and not policy.client_keys:
            return _fail(dns.rcode.REFUSED, f"{what}: {type_text(rdtype)} is kept by the key policy")
    return None


class _Work:
    """The zone with the update's changes over it; the zone itself is never written."""

    def __init__(self, zone: ZoneData) -> None:
        self.zone = zone
        self.changed: dict[Key, dict[int, RRsetRec | None]] = {}

    def get(self, key: Key, rdtype: int) -> RRsetRec | None:
        node = self.changed.get(key)
        if node is not None and rdtype in node:
            return node[rdtype]
        return self.zone.rrset(key, rdtype)

    def types(self, key: Key) -> Collection[int]:
        types = set(self.zone.types(key))
        for rdtype, r in self.changed.get(key, {}).items():
            if r is None:
                types.discard(rdtype)
            else:
                types.add(rdtype)
        return types

    def put(self, key: Key, rdtype: int, r: RRsetRec | None) -> None:
        self.changed.setdefault(key, {})[rdtype] = r

    def changeset(self) -> ChangeSet:
        removed, added = [], []
        for key, node in self.changed.items():
            for rdtype, new in node.items():
                old = self.zone.rrset(key, rdtype)
                if old == new:
                    continue
                if old is not None:
                    removed.append(old)
                if new is not None:
                    added.append(new)
        return ChangeSet(tuple(removed), tuple(added))


def _apply(work: _Work, rr: dns.rrset.RRset, okey: Key) -> None:
    """One update RR (RFC 2136 §3.4.2); what the RFC says to ignore is ignored silently."""
    key, rdtype = key_of(rr.name), rr.rdtype
    apex = key == okey
    if rr.deleting is None:
        for rd in rr:
            _add(work, rr, key, rd, apex)
    elif rr.deleting == dns.rdataclass.ANY:
        if rdtype == RdataType.ANY:
            for t in list(work.types(key)):
                kept = (apex and t in (RdataType.SOA, RdataType.NS)) or t in KEY_RECORDS
                if not kept and t not in SIGNER_MADE:
                    work.put(key, t, None)
        elif not (apex and rdtype in (RdataType.SOA, RdataType.NS)):
            work.put(key, rdtype, None)
    else:
        have = work.get(key, rdtype)
        if rdtype == RdataType.SOA or have is None:
            return
        gone = {rd.to_digestable() for rd in rr}
        keep = [(w, t) for w, t in zip(have.wires, have.texts, strict=True) if w not in gone]
        if not keep and apex and rdtype == RdataType.NS:
            return  # never the zone's last NS
        work.put(key, rdtype, make_rrset(key, have.owner, rdtype, have.ttl, keep) if keep else None)


def _add(work: _Work, rr: dns.rrset.RRset, key: Key, rd: dns.rdata.Rdata, apex: bool) -> None:
    rdtype = rr.rdtype
    if rdtype in _NEVER_ADDED or (apex and rdtype == RdataType.DS) or (
            rdtype in (RdataType.NS, RdataType.DNAME) and rr.name.is_wild()):
        return  # ignored as BIND does: obsolete MD/MF, a DS at the apex, a wildcard cut
    have = work.get(key, rdtype)
    owner = have.owner if have is not None else rr.name.to_text()
    if rdtype == RdataType.SOA:
        if not apex or have is None or not serial_lt(_serial(have), rd.serial):  # type: ignore[attr-defined]
            return
        have = None  # the one SOA is replaced
    elif rdtype == RdataType.CNAME:
        if any(clashes_with_cname(t) for t in work.types(key)):
            return
    elif clashes_with_cname(rdtype) and RdataType.CNAME in work.types(key):
        return
    if rdtype in _SINGLETONS:
        have = None
    pairs = dict(zip(have.wires, have.texts, strict=True)) if have is not None else {}
    pairs[rd.to_digestable()] = rd.to_text()
    # All records of an RRset share one TTL (RFC 2181 §5.2): the update's, as BIND.
    work.put(key, rdtype, make_rrset(key, owner, rdtype, rr.ttl, pairs.items()))


def _serial(soa: RRsetRec) -> int:
    return int(soa.texts[0].split()[2])
