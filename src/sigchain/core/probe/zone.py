"""What one probe's answers say: the RRSIG times per RRset, the SOA serial, whether the
parent's DS matches a key that signs the zone's DNSKEY RRset, a resolver's AD on the SOA and
on the zone's large answers (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.dnssec.ds import ds_matches


@dataclass(frozen=True)
class SigTimes:
    """The signatures over one RRset: the earliest expiry among them (when the first one
    stops validating) and that signature's inception."""

    name: str
    rdtype: str
    expiry: int
    inception: int


@dataclass(frozen=True)
class ServerProbe:
    """One authoritative server's answers for a zone, or why there were none."""

    zone: str
    server: str
    ok: bool
    duration: float
    error: str = ""
    serial: int | None = None
    sigs: tuple[SigTimes, ...] = ()

    @property
    def earliest(self) -> SigTimes | None:
        return min(self.sigs, key=lambda s: s.expiry, default=None)


@dataclass(frozen=True)
class DsProbe:
    """The DS RRset for a zone at one parent server, compared with the zone's DNSKEYs."""

    zone: str
    parent_server: str
    ok: bool
    duration: float
    error: str = ""
    count: int = 0
    matches: bool | None = False  # None: no server of the zone gave its DNSKEY to compare with


@dataclass(frozen=True)
class ResolverProbe:
    """Whether a validating resolver answered the zone's SOA with AD set, and its large
    answers (the DNSKEY RRset, a signed denial) whole with AD; `large_error` says why not."""

    zone: str
    resolver: str
    ok: bool
    duration: float
    error: str = ""
    validates: bool = False
    chain_secure: bool | None = None  # sigchain's own validation from the anchor, CD=1
    large_ok: bool | None = None  # None: not asked (the SOA got no answer)
    large_error: str = ""


@dataclass(frozen=True)
class ZoneSnapshot:
    """Everything the last probe round of one zone found; replaced whole after each round."""

    zone: str
    at: int
    servers: tuple[ServerProbe, ...] = ()
    ds: tuple[DsProbe, ...] = ()
    resolvers: tuple[ResolverProbe, ...] = ()


def signature_times(rrsets: Iterable[dns.rrset.RRset]) -> tuple[SigTimes, ...]:
    """Per (owner, covered type): the earliest-expiring RRSIG, sorted by name and type."""
    best: dict[tuple[dns.name.Name, int], tuple[int, int]] = {}
    for rrset in rrsets:
        if rrset.rdtype != RdataType.RRSIG:
            continue
        for sig in rrset:
            key = (rrset.name, int(sig.type_covered))  # type: ignore[attr-defined]
            times = (int(sig.expiration), int(sig.inception))  # type: ignore[attr-defined]
            if key not in best or times[0] < best[key][0]:
                best[key] = times
    return tuple(SigTimes(name.to_text(), dns.rdatatype.to_text(rdtype), exp, inc)
                 for (name, rdtype), (exp, inc) in sorted(best.items()))


def authoritative_answer(reply: dns.message.Message, zone: dns.name.Name,
                         rdtype: int) -> tuple[list[dns.rrset.RRset], str]:
    """The answer RRsets of an authoritative reply for (zone, rdtype), or why it is not one
    (not NOERROR, not AA: a lame server, no data, or an answer without signatures)."""
    rcode = reply.rcode()
    what = f"{zone} {dns.rdatatype.to_text(rdtype)}"
    if rcode != dns.rcode.NOERROR:
        return [], f"{what}: {dns.rcode.to_text(rcode)}"
    if not reply.flags & dns.flags.AA:
        return [], f"{what}: not authoritative (lame)"
    data = [r for r in reply.answer if r.name == zone and r.rdtype == rdtype]
    if not data:
        return [], f"{what}: no data"
    if not any(r.rdtype == RdataType.RRSIG and r.covers == rdtype for r in reply.answer):
        return list(reply.answer), f"{what}: no RRSIG (unsigned, or stripped)"
    return list(reply.answer), ""


def soa_serial(rrsets: Iterable[dns.rrset.RRset]) -> int | None:
    for r in rrsets:
        if r.rdtype == RdataType.SOA:
            return int(r[0].serial)  # type: ignore[attr-defined]
    return None


def ds_match(zone: dns.name.Name, ds: dns.rrset.RRset | None,
             dnskey_answer: Sequence[dns.rrset.RRset]) -> bool:
    """Whether some DS names a DNSKEY of the zone that signs the DNSKEY RRset (a signature
    by it that is cryptographically correct) — the link a validator needs (RFC 4035 §5.2).
    The signature's validity window is not this metric's matter: an expired one is the
    expiry alerts' (its fix is re-signing; calling it DS drift would send an operator to
    change a DS that is right)."""
    if ds is None:
        return False
    keys = next((r for r in dnskey_answer if r.rdtype == RdataType.DNSKEY and r.name == zone), None)
    sigs = next((r for r in dnskey_answer if r.rdtype == RdataType.RRSIG
                 and r.covers == RdataType.DNSKEY and r.name == zone), None)
    if keys is None or sigs is None:
        return False
    for key in keys:
        if not any(ds_matches(zone, rd, key) for rd in ds):  # type: ignore[arg-type]
            continue
        tag = dns.dnssec.key_id(key)  # type: ignore[arg-type]
        for sig in sigs:
            if sig.key_tag != tag or sig.algorithm != key.algorithm:  # type: ignore[attr-defined]
                continue
            try:  # judged at its own inception: inside its window, whatever the time
                dns.dnssec.validate_rrsig(keys, sig, {zone: keys}, now=sig.inception)  # type: ignore[arg-type,attr-defined]
            except (dns.dnssec.ValidationFailure, dns.dnssec.UnsupportedAlgorithm):
                continue
            return True
    return False


def ds_rrset(reply: dns.message.Message, zone: dns.name.Name) -> tuple[dns.rrset.RRset | None, str]:
    """The DS RRset a parent server answered, None for a proven absence, or why neither."""
    rcode = reply.rcode()
    if rcode != dns.rcode.NOERROR:
        return None, f"{zone} DS: {dns.rcode.to_text(rcode)}"
    if not reply.flags & dns.flags.AA:
        return None, f"{zone} DS: not authoritative for the parent (lame)"
    ds = next((r for r in reply.answer if r.rdtype == RdataType.DS and r.name == zone), None)
    return ds, ""


def resolver_validates(reply: dns.message.Message) -> tuple[bool, str]:
    """(AD set on a NOERROR answer, why not): what a validating resolver says of the zone."""
    rcode = reply.rcode()
    if rcode != dns.rcode.NOERROR:
        return False, f"{dns.rcode.to_text(rcode)}"
    if not reply.flags & dns.flags.AD:
        return False, "answer without AD"
    return True, ""


def large_answer(reply: dns.message.Message, rdtype: int) -> str:
    """Why a resolver's reply to a question with a large signed answer (DO=1) is not that
    answer, validated and whole ("" when it is): the DNSKEY RRset with its RRSIGs, or (any
    other type, asked of a name that does not exist) a denial with AD and its signed proofs."""
    rcode = reply.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return dns.rcode.to_text(rcode)
    if not reply.flags & dns.flags.AD:
        return f"{dns.rcode.to_text(rcode)} without AD"
    if rdtype == RdataType.DNSKEY:
        if not any(r.rdtype == RdataType.DNSKEY for r in reply.answer):
            return "no DNSKEY RRset in the answer"
        if not any(r.rdtype == RdataType.RRSIG and r.covers == RdataType.DNSKEY
                   for r in reply.answer):
            return "the DNSKEY RRset without its RRSIGs"
    elif not any(r.rdtype == RdataType.RRSIG for r in (*reply.answer, *reply.authority)):
        return "the denial without its signed proofs"
    return ""
