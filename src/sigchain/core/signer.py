"""Zone signing (pure): key selection, DNSKEY/CDS/NSEC3PARAM at the apex, RRSIGs, NSEC/NSEC3.

The zone comes in as rdatasets per owner name and goes out as signed rdatasets per owner
name in canonical order. Each RRset is signed by `rrsig.sign_rrset`, which needs nothing
but its arguments, so the per-RRset work can be shared out to worker processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.SOA
from dns.rdatatype import RdataType

from sigchain.core import algorithms, denial, ds
from sigchain.core.rrsig import SigWindow, sign_rrset
from sigchain.core.zonedata import DNSSEC_GENERATED, NodeKind, shape
from sigchain.errors import InputError, UnsafeRefused
from sigchain.model.keys import KeyPair

Zone = Mapping[dns.name.Name, Sequence[dns.rdataset.Rdataset]]

_KSK_SIGNED = (RdataType.DNSKEY, RdataType.CDS, RdataType.CDNSKEY)


@dataclass(frozen=True)
class SignOptions:
    window: SigWindow
    nsec3: denial.Nsec3Params | None = None
    cds: bool = False
    deterministic: bool = False
    serial: str = "keep"  # keep | increment | unixtime
    force: bool = False


@dataclass(frozen=True)
class SignedRRset:
    rdataset: dns.rdataset.Rdataset
    rrsigs: tuple[dns.rdata.Rdata, ...] = ()


@dataclass
class SignResult:
    origin: dns.name.Name
    nodes: list[tuple[dns.name.Name, list[SignedRRset]]]  # canonical order
    warnings: list[str] = field(default_factory=list)
    signatures: int = 0
    ksk_signs_dnskey: bool = True  # every algorithm has a SEP key signing the DNSKEY RRset
    keys: list[dict[str, object]] = field(default_factory=list)

    def to_zone(self) -> dict[dns.name.Name, list[dns.rdataset.Rdataset]]:
        """The signed zone as rdatasets per owner (RRSIGs as one rdataset per covered type)."""
        zone: dict[dns.name.Name, list[dns.rdataset.Rdataset]] = {}
        for name, rrsets in self.nodes:
            out = zone[name] = []
            for s in rrsets:
                out.append(s.rdataset)
                if s.rrsigs:
                    sigs = dns.rdataset.Rdataset(
                        dns.rdataclass.IN, RdataType.RRSIG, s.rdataset.rdtype
                    )
                    sigs.update_ttl(s.rdataset.ttl)
                    for sig in s.rrsigs:
                        sigs.add(sig)
                    out.append(sigs)
        return zone


@dataclass(frozen=True)
class KeyPlan:
    """Which keys are in the DNSKEY RRset and which sign what, at `now`."""

    published: list[KeyPair]
    ksk_signers: dict[int, list[KeyPair]]  # algorithm → keys signing DNSKEY/CDS/CDNSKEY
    zsk_signers: dict[int, list[KeyPair]]  # algorithm → keys signing everything else
    warnings: list[str]


def plan_keys(keys: Sequence[KeyPair], origin: dns.name.Name, now: int, force: bool) -> KeyPlan:
    """Apply BIND timing metadata (as `dnssec-signzone -S`) and the KSK/ZSK/CSK rules."""
    warnings: list[str] = []
    for k in keys:
        if k.zone != origin:
            raise InputError(f"key {k.source} is for zone {k.zone}, not {origin}", file=k.source)
    published = [k for k in keys if k.timing.is_published(now)]
    active = [k for k in published if k.timing.is_active(now)]
    if not active:
        raise InputError(f"no active signing key for {origin} (of {len(keys)} key(s) found)")
    algs = sorted({k.algorithm for k in published})
    ksk: dict[int, list[KeyPair]] = {}
    zsk: dict[int, list[KeyPair]] = {}
    for a in algs:
        algorithms.check_may_sign(algorithms.get(a), force)
        seps = [k for k in active if k.algorithm == a and k.is_sep]
        zones = [k for k in active if k.algorithm == a and not k.is_sep]
        if not seps and not zones:
            msg = (
                f"algorithm {a} is in the DNSKEY RRset but has no active key: every algorithm "
                "in the DNSKEY RRset must sign every RRset (RFC 6840 §5.11)"
            )
            if not force:
                raise UnsafeRefused(msg)
            warnings.append(msg)
            continue
        if not seps:
            warnings.append(
                f"algorithm {a} has no active KSK: its ZSK signs the DNSKEY RRset "
                "(the zone passes dnssec-verify only with -z)"
            )
        ksk[a] = seps or zones
        zsk[a] = zones or seps  # a KSK whose algorithm has no ZSK acts as a CSK
    return KeyPlan(published, ksk, zsk, warnings)


def _soa(zone: Zone, origin: dns.name.Name) -> dns.rdataset.Rdataset:
    for rds in zone.get(origin, ()):
        if rds.rdtype == RdataType.SOA:
            return rds
    raise InputError(f"no SOA record at the zone apex {origin}")


def next_serial(current: int, policy: str, now: int) -> int:
    """RFC 1982 serial update; `unixtime` never goes backwards (falls back to increment)."""
    inc = (current + 1) % (1 << 32) or 1
    if policy == "keep":
        return current
    if policy == "increment":
        return inc
    if policy == "unixtime":
        return now if (now - current) % (1 << 32) < (1 << 31) and now != current else inc
    raise InputError(f"unknown serial policy {policy!r} (keep, increment or unixtime)")


def _rdataset(rdtype: int, ttl: int, rdatas: Sequence[dns.rdata.Rdata]) -> dns.rdataset.Rdataset:
    rds = dns.rdataset.Rdataset(dns.rdataclass.IN, rdtype)
    rds.update_ttl(ttl)
    for rd in rdatas:
        rds.add(rd)
    return rds


def sign_zone(
    zone: Zone, origin: dns.name.Name, keys: Sequence[KeyPair], opts: SignOptions, now: int
) -> SignResult:
    plan = plan_keys(keys, origin, now, opts.force)
    warnings = list(plan.warnings)
    soa_rds = _soa(zone, origin)
    soa: dns.rdtypes.ANY.SOA.SOA = soa_rds[0]  # type: ignore[assignment]
    denial_ttl = min(soa.minimum, soa_rds.ttl)  # RFC 9077

    # 1. Start from the unsigned data: drop what a signer generates.
    data: dict[dns.name.Name, dict[int, dns.rdataset.Rdataset]] = {}
    for name, rdatasets in zone.items():
        if not name.is_subdomain(origin):
            raise InputError(f"{name} is outside the zone {origin}")
        for rds in rdatasets:
            if rds.rdclass != dns.rdataclass.IN:
                raise InputError(f"{name}: class {dns.rdataclass.to_text(rds.rdclass)} is not IN")
            if rds.rdtype in DNSSEC_GENERATED:
                continue
            data.setdefault(name, {})[rds.rdtype] = rds

    # 2. Apex: DNSKEY RRset from the key directory (plus foreign keys already in the zone).
    apex = data.setdefault(origin, {})
    ours = {(k.algorithm, k.key_tag, k.dnskey.key) for k in keys}
    old_dnskey = apex.pop(RdataType.DNSKEY, None)
    foreign = [
        rd for rd in (old_dnskey or ())
        if (rd.algorithm, dns.dnssec.key_id(rd), rd.key) not in ours  # type: ignore[attr-defined]
    ]
    for rd in foreign:
        if rd.algorithm not in plan.zsk_signers:  # type: ignore[attr-defined]
            raise InputError(
                f"the zone's DNSKEY RRset has a key (tag {dns.dnssec.key_id(rd)}, algorithm "  # type: ignore[arg-type]
                f"{rd.algorithm}) with no signing key of its algorithm in the key directory"  # type: ignore[attr-defined]
            )
    key_ttls = [k.ttl for k in plan.published if k.ttl is not None]
    dnskey_ttl = min(key_ttls) if key_ttls else (old_dnskey.ttl if old_dnskey else soa_rds.ttl)
    apex[RdataType.DNSKEY] = _rdataset(
        RdataType.DNSKEY, dnskey_ttl, [k.dnskey for k in plan.published] + foreign
    )
    if opts.cds:
        sync = [
            k for k in plan.published
            if k.is_sep and k.timing.is_active(now)
            and (k.timing.sync_publish is None or k.timing.sync_publish <= now)
            and (k.timing.sync_delete is None or k.timing.sync_delete > now)
        ]
        if sync:
            apex[RdataType.CDS] = _rdataset(
                RdataType.CDS, dnskey_ttl, [ds.make_cds(origin, k.dnskey, 2) for k in sync]
            )
            apex[RdataType.CDNSKEY] = _rdataset(
                RdataType.CDNSKEY, dnskey_ttl, [ds.make_cdnskey(k.dnskey) for k in sync]
            )
        else:
            warnings.append("--cds: no active KSK to publish CDS/CDNSKEY for")
    if opts.nsec3 is not None:
        apex[RdataType.NSEC3PARAM] = _rdataset(
            RdataType.NSEC3PARAM, 0, [denial.nsec3param_rdata(opts.nsec3)]
        )
    new_serial = next_serial(soa.serial, opts.serial, now)
    if new_serial != soa.serial:
        apex[RdataType.SOA] = _rdataset(RdataType.SOA, soa_rds.ttl, [soa.replace(serial=new_serial)])

    # 3. Shape, denial chain.
    types_at = {n: set(rs) for n, rs in data.items()}
    zshape = shape(origin, types_at)
    for name, kind in zshape.kinds.items():
        if kind is NodeKind.AUTH and RdataType.DS in types_at[name]:
            raise InputError(f"{name}: DS record without NS (a DS belongs at a delegation)")
    out: dict[dns.name.Name, dict[int, dns.rdataset.Rdataset]] = {
        n: dict(rs) for n, rs in data.items()
    }
    if opts.nsec3 is None:
        for name, rd in denial.nsec_chain(zshape, types_at):
            out[name][RdataType.NSEC] = _rdataset(RdataType.NSEC, denial_ttl, [rd])
    else:
        try:
            chain = denial.nsec3_chain(zshape, types_at, opts.nsec3)
        except denial.HashCollision as exc:
            raise UnsafeRefused(f"{exc}: choose another salt") from None
        for owner, rd in chain:
            if owner in out:
                raise UnsafeRefused(f"NSEC3 owner {owner} collides with a name in the zone")
            out[owner] = {RdataType.NSEC3: _rdataset(RdataType.NSEC3, denial_ttl, [rd])}

    # 4. Signatures.
    result = SignResult(origin, [], warnings)
    result.ksk_signs_dnskey = all(any(k.is_sep for k in ks) for ks in plan.ksk_signers.values())
    w = opts.window
    counts: dict[KeyPair, int] = {}
    for name in sorted(out):
        kind = zshape.kinds.get(name, NodeKind.AUTH)  # NSEC3 owners are authoritative
        signed: list[SignedRRset] = []
        for rdtype in sorted(out[name]):
            rds = out[name][rdtype]
            sigs: list[dns.rdata.Rdata] = []
            if kind is not NodeKind.OCCLUDED and (
                zshape.is_signed_at(name, rdtype) or name not in zshape.kinds
            ):
                signers = plan.ksk_signers if rdtype in _KSK_SIGNED and name == origin else plan.zsk_signers
                expiration = w.expiration_for(name, rdtype)
                for alg_keys in signers.values():
                    for key in alg_keys:
                        sigs.append(
                            sign_rrset(
                                name, rdtype, rds.ttl, list(rds), key, origin,
                                w.inception, expiration, opts.deterministic,
                            )
                        )
                        counts[key] = counts.get(key, 0) + 1
            signed.append(SignedRRset(rds, tuple(sigs)))
        result.nodes.append((name, signed))
    result.signatures = sum(counts.values())
    result.keys = [
        {
            "key_tag": k.key_tag, "algorithm": k.algorithm, "flags": k.flags,
            "file": k.source, "signatures": counts.get(k, 0),
            "state": "active" if k in counts else "published",
        }
        for k in plan.published
    ]
    return result
