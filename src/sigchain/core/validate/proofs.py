"""NSEC and NSEC3 denial-of-existence proofs over records whose signatures already verified.

The validator checks the RRSIGs first and hands over only records that verified; these
functions decide what those records prove (RFC 4035 §5.4 and RFC 6840 §3 for NSEC; RFC 5155
§8 with erratum 3441, and §9.2 for opt-out, for NSEC3). NSEC3 hashing goes through a `Hasher`
the caller supplies, so the caller can cache, count and cap it (CVE-2023-50868). No crypto
and no I/O here: a proof is a function of names, bitmaps and hashes.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rdata
from dns.rdatatype import RdataType

from sigchain.core.zone.nsec3hash import NSEC3_FLAG_OPTOUT, NSEC3_SHA1
from sigchain.core.zone.shape import BitmapTypes
from sigchain.core.zone.sharedname import lower_labels, shared
from sigchain.findings import Param
from sigchain.memo import Kept

WRONG_SIDE = "DENIAL_WRONG_SIDE"  # finding codes a failed proof carries
UNPROVEN = "DENIAL_UNPROVEN"


class ProofStatus(enum.Enum):
    PROVEN = "proven"  # the records prove the claim
    INSECURE = "insecure"  # proven only through an opt-out NSEC3 (RFC 5155 §9.2): no AD
    FAILED = "failed"


@dataclass(frozen=True)
class Proof:
    """What a set of NSEC/NSEC3 records proves about one claim (e.g. "nxdomain")."""

    status: ProofStatus
    claim: str  # "nxdomain" | "nodata" | "wildcard-answer" | "no-ds"
    detail: str
    code: str | None = None  # the finding code: why FAILED, or why INSECURE when not opt-out
    records: tuple[dns.name.Name, ...] = ()  # owners of the records the proof rests on
    params: Mapping[str, Param] | None = field(default=None, hash=False)  # the finding's parameters, when not claim/detail

    @property
    def holds(self) -> bool:
        return self.status is not ProofStatus.FAILED


def _proven(claim: str, detail: str, *records: dns.name.Name, opt_out: bool = False) -> Proof:
    status = ProofStatus.INSECURE if opt_out else ProofStatus.PROVEN
    if opt_out:
        detail += " (through an opt-out NSEC3: insecure, RFC 5155 §9.2)"
    return Proof(status, claim, detail, None, tuple(records))


def _failed(claim: str, detail: str, code: str = UNPROVEN) -> Proof:
    return Proof(ProofStatus.FAILED, claim, detail, code)


def wildcard_of(name: dns.name.Name) -> dns.name.Name:
    """`*.name`: the wildcard whose expansion a closest encloser would allow (RFC 4592)."""
    return shared((b"*",) + name.labels)


def _is_below(name: dns.name.Name, ancestor: dns.name.Name) -> bool:
    return name != ancestor and name.is_subdomain(ancestor)


# ---------------------------------------------------------------------------------------------
# NSEC (RFC 4035 §5.4, RFC 6840 §3.1, §3.3, §3.4)
# ---------------------------------------------------------------------------------------------


def canonical_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """A key whose order is the canonical order of names (RFC 4034 §6.1): the labels from the
    root down, each lowercased; a name sorts before the names below it. Compared as tuples of
    bytes, so an NSEC's coverage costs a few tuple comparisons instead of dnspython's
    label-by-label `fullcompare`."""
    return tuple(reversed(lower_labels(name)))


@dataclass(frozen=True)
class NsecRecord:
    owner: dns.name.Name
    next: dns.name.Name
    types: Container[int]  # BitmapTypes, or any set of type numbers
    owner_key: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    next_key: tuple[bytes, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "owner_key", canonical_key(self.owner))
        object.__setattr__(self, "next_key", canonical_key(self.next))

    @classmethod
    def from_rdata(cls, owner: dns.name.Name, rd: dns.rdata.Rdata) -> NsecRecord:
        return cls(owner, rd.next, BitmapTypes(rd.windows))  # type: ignore[attr-defined]

    def covers(self, name: dns.name.Name) -> bool:
        """owner < name < next in canonical order; the last NSEC wraps to the apex."""
        return self.covers_key(canonical_key(name))

    def covers_key(self, key: tuple[bytes, ...]) -> bool:
        """`covers` for a name's `canonical_key`."""
        if self.owner_key < self.next_key:
            return self.owner_key < key < self.next_key
        return key > self.owner_key or key < self.next_key

    @property
    def delegation(self) -> bool:
        """Parent side of a zone cut: NS without SOA."""
        return RdataType.NS in self.types and RdataType.SOA not in self.types


_NO_DATA = frozenset((RdataType.NSEC, RdataType.NSEC3, RdataType.RRSIG))


def _data_type(types: Container[int]) -> int | None:
    """A type of data a bitmap names (not the denial's own NSEC/NSEC3 and RRSIG): a name with
    one has an answer to ANY."""
    if isinstance(types, BitmapTypes):
        return types.other_than(_NO_DATA)
    return next((t for t in sorted(types) if t not in _NO_DATA), None)  # type: ignore[call-overload]


def nodata_bits(types: Container[int], owner: dns.name.Name, qtype: int,
                 delegation: bool) -> tuple[str, str]:
    """(why, finding code) when a matching NSEC/NSEC3 does not prove NODATA for qtype;
    ("", "") when it does."""
    if qtype in types:
        return f"the type bitmap at {owner} lists {RdataType.to_text(qtype)}", UNPROVEN
    if qtype == RdataType.ANY and (data := _data_type(types)) is not None:
        return (f"the type bitmap at {owner} lists {RdataType.to_text(data)}: ANY there has "
                "an answer"), UNPROVEN
    if RdataType.CNAME in types:
        return f"{owner} owns a CNAME (RFC 6840 §3.3)", UNPROVEN
    if qtype != RdataType.DS and delegation:
        return (f"{owner} is the parent side of a zone cut: it proves nothing but DS "
                "(RFC 6840 §3.1)"), WRONG_SIDE
    if qtype == RdataType.DS and RdataType.SOA in types and owner != dns.name.root:
        return (f"the record at {owner} is the child zone's apex record, but a DS lives in the "
                "parent zone (RFC 4035 §3.1.4.1)"), WRONG_SIDE
    return "", ""


def _nsec_match(records: Sequence[NsecRecord], name: dns.name.Name) -> NsecRecord | None:
    return next((r for r in records if r.owner == name), None)


def _nsec_cover(records: Sequence[NsecRecord],
                name: dns.name.Name) -> tuple[NsecRecord | None, str, str]:
    """(record, why not, code): a record that covers `name` and may speak for it, i.e. not the
    parent side of a cut above it nor a DNAME above it (RFC 6840 §3.1)."""
    for r in records:
        if not r.covers(name):
            continue
        if _is_below(name, r.owner) and (r.delegation or RdataType.DNAME in r.types):
            return None, (f"the NSEC at {r.owner} is a delegation or DNAME above {name}: it "
                          "cannot deny names below it (RFC 6840 §3.1)"), WRONG_SIDE
        return r, "", ""
    return None, f"no NSEC record covers {name}", UNPROVEN


def nsec_closest_encloser(qname: dns.name.Name, cover: NsecRecord) -> dns.name.Name:
    """The longest ancestor of qname shared with the covering record's owner or next name."""
    common = max(qname.fullcompare(cover.owner)[2], qname.fullcompare(cover.next)[2])
    return shared(qname.labels[len(qname.labels) - common:])  # qname.split(common)[1], shared


def nsec_nodata(records: Sequence[NsecRecord], qname: dns.name.Name, qtype: int) -> Proof:
    """NODATA (RFC 4035 §3.1.3.1), empty non-terminal, or wildcard NODATA (§3.1.3.4)."""
    match = _nsec_match(records, qname)
    if match is not None:
        reason, code = nodata_bits(match.types, qname, qtype, match.delegation)
        if reason:
            return _failed("nodata", reason, code)
        return _proven("nodata", f"the NSEC at {qname} does not list the type", qname)
    cover, reason, code = _nsec_cover(records, qname)
    if cover is None:
        return _failed("nodata", reason, code)
    if _is_below(cover.next, qname):
        return _proven("nodata", f"{qname} is an empty non-terminal ({cover.next} is below it)",
                       cover.owner)
    ce = nsec_closest_encloser(qname, cover)
    wildcard = _nsec_match(records, wildcard_of(ce))
    if wildcard is None:
        empty, _, _ = _nsec_cover(records, wildcard_of(ce))
        if empty is not None and _is_below(empty.next, wildcard_of(ce)):
            # the source of synthesis is an empty non-terminal: it exists, with no type at
            # all (RFC 4592 §4.9), as the NSEC before it shows by a next name below it
            return _proven("nodata", f"wildcard NODATA: {qname} is covered and "
                           f"{wildcard_of(ce)} is an empty non-terminal ({empty.next} is below it)",
                           cover.owner, empty.owner)
        return _failed("nodata", f"{qname} does not exist (the NSEC at {cover.owner} covers it) "
                       f"and no NSEC matches the wildcard {wildcard_of(ce)}")
    reason, code = nodata_bits(wildcard.types, wildcard.owner, qtype, wildcard.delegation)
    if reason:
        return _failed("nodata", reason, code)
    return _proven("nodata", f"wildcard NODATA: {qname} is covered and {wildcard.owner} lacks the type",
                   cover.owner, wildcard.owner)


def nsec_nxdomain(records: Sequence[NsecRecord], qname: dns.name.Name) -> Proof:
    """Name error: qname is covered and so is the wildcard at its closest encloser (§3.1.3.2)."""
    if _nsec_match(records, qname) is not None:
        return _failed("nxdomain", f"an NSEC exists at {qname}: the name exists")
    cover, reason, code = _nsec_cover(records, qname)
    if cover is None:
        return _failed("nxdomain", reason, code)
    if _is_below(cover.next, qname):
        return _failed("nxdomain", f"{qname} is an empty non-terminal ({cover.next} is below it)")
    ce = nsec_closest_encloser(qname, cover)
    wildcard = wildcard_of(ce)
    if _nsec_match(records, wildcard) is not None:
        return _failed("nxdomain", f"the wildcard {wildcard} exists: {qname} should have been synthesised")
    wcover, reason, code = _nsec_cover(records, wildcard)
    if wcover is None:
        return _failed("nxdomain", f"nothing proves the wildcard {wildcard} absent: {reason}", code)
    if _is_below(wcover.next, wildcard):
        return _failed("nxdomain", f"the wildcard {wildcard} exists as an empty non-terminal "
                       f"({wcover.next} is below it): {qname} is NODATA, not a name error")
    return _proven("nxdomain", f"the NSEC at {cover.owner} covers {qname}; the one at "
                   f"{wcover.owner} covers {wildcard}", cover.owner, wcover.owner)


def nsec_wildcard_answer(records: Sequence[NsecRecord], qname: dns.name.Name,
                         closest_encloser: dns.name.Name) -> Proof:
    """A wildcard expansion needs proof that qname itself does not exist (RFC 4035 §5.3.4)."""
    claim = "wildcard-answer"
    if _nsec_match(records, qname) is not None:
        return _failed(claim, f"{qname} exists: it must not be answered from a wildcard",
                       "WILDCARD_UNPROVEN")
    cover, reason, code = _nsec_cover(records, qname)
    if cover is None:
        return _failed(claim, reason, code if code == WRONG_SIDE else "WILDCARD_UNPROVEN")
    ce = nsec_closest_encloser(qname, cover)
    if ce != closest_encloser:
        return _failed(claim, f"the NSEC at {cover.owner} puts the closest encloser of {qname} at "
                       f"{ce}, not at {closest_encloser}", "WILDCARD_UNPROVEN")
    return _proven(claim, f"the NSEC at {cover.owner} covers {qname}", cover.owner)


def nsec_no_ds(records: Sequence[NsecRecord], child: dns.name.Name) -> Proof:
    """Insecure delegation: an NSEC at the cut with NS, without DS and SOA (RFC 6840 §3.4)."""
    match = _nsec_match(records, child)
    if match is None:
        return _failed("no-ds", f"no NSEC record at the delegation {child}")
    if RdataType.DS in match.types:
        return _failed("no-ds", f"the NSEC at {child} lists DS")
    if RdataType.NS not in match.types:
        return _failed("no-ds", f"the NSEC at {child} has no NS bit: {child} is not a delegation")
    if RdataType.SOA in match.types:
        return _failed("no-ds", f"the NSEC at {child} is the child's apex NSEC, from the wrong side "
                       "of the zone cut", "DENIAL_WRONG_SIDE")
    return _proven("no-ds", f"the NSEC at {child} lists NS but not DS", child)


# ---------------------------------------------------------------------------------------------
# NSEC3 (RFC 5155 §8, erratum 3441; §9.2 opt-out)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nsec3Record:
    owner: dns.name.Name
    hash: bytes  # the owner's first label, base32hex-decoded
    next: bytes
    types: Container[int]  # BitmapTypes, or any set of type numbers
    opt_out: bool
    algorithm: int
    iterations: int
    salt: bytes

    @classmethod
    def from_rdata(cls, owner: dns.name.Name, rd: dns.rdata.Rdata) -> Nsec3Record | None:
        """None when the owner's first label is not a base32hex hash (RFC 5155 §3)."""
        try:
            digest = base64.b32hexdecode(owner.labels[0].upper())
        except (binascii.Error, ValueError, IndexError):
            return None
        return cls(
            owner, digest, rd.next, BitmapTypes(rd.windows),  # type: ignore[attr-defined]
            bool(rd.flags & NSEC3_FLAG_OPTOUT), rd.algorithm, rd.iterations, rd.salt,  # type: ignore[attr-defined]
        )

    @property
    def params(self) -> tuple[int, int, bytes]:
        return (self.algorithm, self.iterations, self.salt)

    def covers(self, digest: bytes) -> bool:
        if self.hash < self.next:
            return self.hash < digest < self.next
        return digest > self.hash or digest < self.next  # the last record wraps around

    @property
    def delegation(self) -> bool:
        return RdataType.NS in self.types and RdataType.SOA not in self.types


Hasher = Callable[[dns.name.Name, Nsec3Record], bytes]

MAX_PARSED = 4096  # records kept by `parsed` (all dropped when full)
_PARSED: Kept[tuple[int, tuple[bytes, ...]], tuple[dns.rdata.Rdata, NsecRecord | Nsec3Record | None]] = \
    Kept(MAX_PARSED)


def parsed(owner: dns.name.Name, rd: dns.rdata.Rdata) -> NsecRecord | Nsec3Record | None:
    """`NsecRecord.from_rdata` or `Nsec3Record.from_rdata` for an NSEC or NSEC3 rdata,
    remembered by the rdata object (held by the entry, so its id is not reused while kept;
    rdata are immutable) and the owner's labels: a resolver's replies and kept denials share
    their rdata objects, and the same records prove the denials of many names."""
    key = (id(rd), owner.labels)
    kept = _PARSED.get(key)
    if kept is not None and kept[0] is rd:
        return kept[1]
    record = NsecRecord.from_rdata(owner, rd) if rd.rdtype == RdataType.NSEC else \
        Nsec3Record.from_rdata(owner, rd)
    return _PARSED.keep(key, (rd, record))[1]


@dataclass(frozen=True)
class _ClosestEncloser:
    name: dns.name.Name
    match: Nsec3Record
    next_closer: dns.name.Name
    cover: Nsec3Record


class _Chain:
    """NSEC3 records sharing one parameter set, with lookups by hashed name."""

    def __init__(self, records: Sequence[Nsec3Record], hasher: Hasher, zone: dns.name.Name):
        self.records = records
        self.hasher = hasher
        self.zone = zone

    def match(self, name: dns.name.Name) -> Nsec3Record | None:
        digest = self.hasher(name, self.records[0])
        return next((r for r in self.records if r.hash == digest), None)

    def cover(self, name: dns.name.Name) -> Nsec3Record | None:
        digest = self.hasher(name, self.records[0])
        return next((r for r in self.records if r.covers(digest)), None)

    def closest_encloser(self, qname: dns.name.Name) -> _ClosestEncloser | Proof:
        """RFC 5155 §8.3: the longest ancestor with a matching NSEC3, whose next closer name is
        covered; or the failed proof saying why there is none. The walk starts above qname:
        qname's own match is the caller's business."""
        if not _is_below(qname, self.zone):
            return _failed("closest-encloser", f"{qname} is not below the zone {self.zone}")
        next_closer, name = qname, qname.parent()
        while True:
            match = self.match(name)
            if match is not None:
                if match.delegation or RdataType.DNAME in match.types:
                    return _failed("closest-encloser", f"the closest encloser {name} is a "
                                   "delegation or DNAME: its NSEC3 cannot deny names below it "
                                   "(RFC 6840 §3.1)", WRONG_SIDE)
                cover = self.cover(next_closer)
                if cover is None:
                    return _failed("closest-encloser", f"no NSEC3 covers the next closer name {next_closer}")
                return _ClosestEncloser(name, match, next_closer, cover)
            if name == self.zone:
                return _failed("closest-encloser", f"no NSEC3 matches any ancestor of {qname}")
            next_closer, name = name, name.parent()


def _by_params(records: Sequence[Nsec3Record]) -> list[list[Nsec3Record]]:
    groups: dict[tuple[int, int, bytes], list[Nsec3Record]] = {}
    for r in records:
        if r.algorithm == NSEC3_SHA1:  # RFC 5155 §8.1: ignore unknown hash algorithms
            groups.setdefault(r.params, []).append(r)
    return list(groups.values())


def _best(proofs: list[Proof], claim: str) -> Proof:
    for status in (ProofStatus.PROVEN, ProofStatus.INSECURE):
        for p in proofs:
            if p.status is status:
                return p
    return proofs[0] if proofs else _failed(claim, "no NSEC3 record with a supported hash algorithm")


def _each_chain(records: Sequence[Nsec3Record], hasher: Hasher, zone: dns.name.Name,
                claim: str, prove: Callable[[_Chain], Proof]) -> Proof:
    return _best([prove(_Chain(g, hasher, zone)) for g in _by_params(records)], claim)


def nsec3_nxdomain(records: Sequence[Nsec3Record], qname: dns.name.Name, zone: dns.name.Name,
                   hasher: Hasher) -> Proof:
    """RFC 5155 §8.4: closest encloser proof for qname plus a cover of the wildcard there."""

    def prove(chain: _Chain) -> Proof:
        if chain.match(qname) is not None:
            return _failed("nxdomain", f"an NSEC3 matches {qname}: the name exists")
        ce = chain.closest_encloser(qname)
        if isinstance(ce, Proof):
            return _failed("nxdomain", ce.detail, ce.code or UNPROVEN)
        wildcard = wildcard_of(ce.name)
        if chain.match(wildcard) is not None:
            return _failed("nxdomain", f"the wildcard {wildcard} exists: {qname} should have been synthesised")
        wcover = chain.cover(wildcard)
        if wcover is None:
            return _failed("nxdomain", f"no NSEC3 covers the wildcard {wildcard}")
        return _proven("nxdomain", f"closest encloser {ce.name}, next closer {ce.next_closer} and "
                       f"{wildcard} covered", ce.match.owner, ce.cover.owner, wcover.owner,
                       opt_out=ce.cover.opt_out)

    return _each_chain(records, hasher, zone, "nxdomain", prove)


def nsec3_nodata(records: Sequence[Nsec3Record], qname: dns.name.Name, qtype: int,
                 zone: dns.name.Name, hasher: Hasher) -> Proof:
    """RFC 5155 §8.5 (with erratum 3441), §8.6 (QTYPE DS) and §8.7 (wildcard NODATA)."""

    def prove(chain: _Chain) -> Proof:
        match = chain.match(qname)
        if match is not None:
            reason, code = nodata_bits(match.types, qname, qtype, match.delegation)
            if reason:
                return _failed("nodata", reason, code)
            return _proven("nodata", f"the NSEC3 matching {qname} does not list the type", match.owner)
        ce = chain.closest_encloser(qname)
        if isinstance(ce, Proof):
            return _failed("nodata", f"no NSEC3 matches {qname} and {ce.detail}", ce.code or UNPROVEN)
        # §8.7 for DS too (as BIND and Unbound): a name the wildcard would answer has no DS
        # when the wildcard has none; a signed delegation's own NSEC3 matches it, so no proof
        # can say it does not exist
        wildcard = chain.match(wildcard_of(ce.name))
        if wildcard is not None:
            reason, code = nodata_bits(wildcard.types, wildcard_of(ce.name), qtype,
                                        wildcard.delegation)
            if reason:
                return _failed("nodata", reason, code)
            return _proven("nodata", f"wildcard NODATA at {wildcard_of(ce.name)}", ce.match.owner,
                           ce.cover.owner, wildcard.owner, opt_out=ce.cover.opt_out)
        if ce.cover.opt_out:
            return _proven("nodata", f"closest provable encloser {ce.name}; {ce.next_closer} is "
                           "covered by an opt-out NSEC3", ce.match.owner, ce.cover.owner, opt_out=True)
        return _failed("nodata", f"no NSEC3 matches {qname} or its wildcard, and the NSEC3 covering "
                       f"{ce.next_closer} is not opt-out")

    return _each_chain(records, hasher, zone, "nodata", prove)


def nsec3_wildcard_answer(records: Sequence[Nsec3Record], qname: dns.name.Name,
                          closest_encloser: dns.name.Name, zone: dns.name.Name,
                          hasher: Hasher) -> Proof:
    """RFC 5155 §8.8: the next closer name of the expansion must be covered."""
    claim = "wildcard-answer"
    next_closer = qname.split(len(closest_encloser) + 1)[1]

    def prove(chain: _Chain) -> Proof:
        if chain.match(next_closer) is not None:
            return _failed(claim, f"{next_closer} exists: the wildcard must not apply",
                           "WILDCARD_UNPROVEN")
        cover = chain.cover(next_closer)
        if cover is None:
            return _failed(claim, f"no NSEC3 covers the next closer name {next_closer}",
                           "WILDCARD_UNPROVEN")
        return _proven(claim, f"the NSEC3 at {cover.owner} covers {next_closer}", cover.owner,
                       opt_out=cover.opt_out)

    return _each_chain(records, hasher, zone, claim, prove)


def nsec3_no_ds(records: Sequence[Nsec3Record], child: dns.name.Name, zone: dns.name.Name,
                hasher: Hasher) -> Proof:
    """RFC 5155 §8.9, RFC 6840 §3.4: NSEC3 at the cut with NS but no DS or SOA, or an opt-out
    NSEC3 covering the next closer name of a closest provable encloser."""

    def prove(chain: _Chain) -> Proof:
        match = chain.match(child)
        if match is not None:
            if RdataType.DS in match.types:
                return _failed("no-ds", f"the NSEC3 matching {child} lists DS")
            if RdataType.NS not in match.types:
                return _failed("no-ds", f"the NSEC3 matching {child} has no NS bit: not a delegation")
            if RdataType.SOA in match.types:
                return _failed("no-ds", f"the NSEC3 matching {child} is the child's apex record",
                               "DENIAL_WRONG_SIDE")
            return _proven("no-ds", f"the NSEC3 matching {child} lists NS but not DS", match.owner)
        ce = chain.closest_encloser(child)
        if isinstance(ce, Proof):
            return _failed("no-ds", ce.detail, ce.code or UNPROVEN)
        if not ce.cover.opt_out:
            return _failed("no-ds", f"the NSEC3 covering {ce.next_closer} is not opt-out")
        # Opt-out covering the delegation is how RFC 5155 proves it unsigned: the delegation
        # itself is insecure, so the proof holds (the caller marks the zone insecure).
        return _proven("no-ds", f"opt-out NSEC3 at {ce.cover.owner} covers {ce.next_closer}",
                       ce.match.owner, ce.cover.owner)

    return _each_chain(records, hasher, zone, "no-ds", prove)
