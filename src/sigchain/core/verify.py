"""Whole-zone verification, the `dnssec-verify` equivalent (pure): every problem a Finding.

Checks (RFC 4033-4035, 5155, 6840 §5.11, 9077, 9276): every authoritative RRset has a valid
RRSIG from each algorithm of the apex DNSKEY RRset within its validity window at `now`; the
DNSKEY RRset is signed by a SEP key of each algorithm; the NSEC or NSEC3 chain is complete,
ordered, closed, with correct bitmaps and uniform parameters; glue, delegation NS and occluded
data carry no signatures.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
from dns.rdatatype import RdataType

from sigchain.core import algorithms, denial
from sigchain.core.rrsig import header_of, rrsig_labels, signature_data, time_status
from sigchain.core.timefmt import format_timestamp14
from sigchain.core.zonedata import (
    NodeKind,
    ZoneShape,
    bitmap_types,
    nsec3_covered,
    nsec3_types,
    nsec_types,
    shape,
    type_text,
)
from sigchain.findings import Finding
from sigchain.model.keys import FLAG_REVOKE, FLAG_SEP, FLAG_ZONE

Zone = Mapping[dns.name.Name, Sequence[dns.rdataset.Rdataset]]


@dataclass
class VerifyReport:
    origin: dns.name.Name
    findings: list[Finding] = field(default_factory=list)
    denial: str = "none"  # nsec | nsec3 | none
    algorithms: list[int] = field(default_factory=list)
    rrsets_checked: int = 0
    signatures_verified: int = 0
    nsec3: dict[str, object] | None = None

    def add(self, code: str, message: str, name: dns.name.Name | None = None, rdtype: int | None = None) -> None:
        self.findings.append(
            Finding(code, message, name.to_text() if name is not None else None,
                    type_text(rdtype) if rdtype is not None else None)
        )


@dataclass(frozen=True)
class _Key:
    rdata: dns.rdata.Rdata
    tag: int
    pub: object


def verify_zone(zone: Zone, origin: dns.name.Name, now: int, ignore_ksk: bool = False) -> VerifyReport:
    rep = VerifyReport(origin)
    data: dict[dns.name.Name, dict[int, dns.rdataset.Rdataset]] = {}
    sigs: dict[dns.name.Name, dict[int, list[dns.rdata.Rdata]]] = {}
    for name, rdatasets in zone.items():
        for rds in rdatasets:
            if rds.rdtype == RdataType.RRSIG:
                for rd in rds:
                    sigs.setdefault(name, {}).setdefault(rd.type_covered, []).append(rd)  # type: ignore[attr-defined]
                data.setdefault(name, {})
            else:
                data.setdefault(name, {})[rds.rdtype] = rds

    apex = data.get(origin, {})
    soa_rds = apex.get(RdataType.SOA)
    if soa_rds is None:
        rep.add("NO_SOA", f"no SOA record at {origin}", origin)
        return rep
    dnskey_rds = apex.get(RdataType.DNSKEY)
    if dnskey_rds is None:
        rep.add("NO_DNSKEY", f"no DNSKEY RRset at {origin}", origin)
        return rep

    keys: dict[tuple[int, int], list[_Key]] = {}
    for rd in dnskey_rds:
        if not rd.flags & FLAG_ZONE or rd.protocol != 3 or rd.flags & FLAG_REVOKE:  # type: ignore[attr-defined]
            continue
        if not algorithms.supported(rd.algorithm):  # type: ignore[attr-defined]
            continue
        alg = algorithms.get(rd.algorithm)  # type: ignore[attr-defined]
        try:
            pub = algorithms.public_key_from_dnskey(alg, rd.key)  # type: ignore[attr-defined]
        except Exception:
            continue
        tag = dns.dnssec.key_id(rd)  # type: ignore[arg-type]
        keys.setdefault((rd.algorithm, tag), []).append(_Key(rd, tag, pub))  # type: ignore[attr-defined]
    algs = sorted({a for a, _ in keys})
    rep.algorithms = algs

    # Zone shape: hashed NSEC3 owners (only NSEC3 + RRSIG) and RRSIG-only leftovers are not data.
    types_at = {n: set(rs) for n, rs in data.items()}
    zshape = shape(origin, types_at, ignore=frozenset({RdataType.NSEC3, RdataType.RRSIG}))

    _check_signatures(rep, data, sigs, zshape, keys, algs, now, ignore_ksk)
    has_nsec = any(RdataType.NSEC in ts for ts in types_at.values())
    has_nsec3 = any(RdataType.NSEC3 in ts for ts in types_at.values()) or RdataType.NSEC3PARAM in types_at[origin]
    if has_nsec and has_nsec3:
        rep.add("NSEC_AND_NSEC3", "the zone has both NSEC and NSEC3 records")
    if has_nsec:
        rep.denial = "nsec"
        _check_nsec(rep, data, zshape, min(soa_rds[0].minimum, soa_rds.ttl))  # type: ignore[attr-defined]
    elif has_nsec3:
        rep.denial = "nsec3"
        _check_nsec3(rep, data, zshape, min(soa_rds[0].minimum, soa_rds.ttl))  # type: ignore[attr-defined]
    else:
        rep.add("NO_DENIAL_CHAIN", "the zone has neither an NSEC nor an NSEC3 chain", origin)
    return rep


def _check_signatures(
    rep: VerifyReport,
    data: dict[dns.name.Name, dict[int, dns.rdataset.Rdataset]],
    sigs: dict[dns.name.Name, dict[int, list[dns.rdata.Rdata]]],
    zshape: ZoneShape,
    keys: dict[tuple[int, int], list[_Key]],
    algs: list[int],
    now: int,
    ignore_ksk: bool,
) -> None:
    origin = rep.origin
    for name in sorted(data):
        kind = zshape.kinds.get(name, NodeKind.AUTH)  # names outside `kinds` are NSEC3 owners
        node_sigs = sigs.get(name, {})
        for covered in sorted(node_sigs):
            if covered not in data[name] or not (
                kind is not NodeKind.OCCLUDED
                and (zshape.is_signed_at(name, covered) or name not in zshape.kinds)
            ):
                what = "an RRset that is not there" if covered not in data[name] else f"{kind.value} data"
                rep.add("RRSIG_ON_NON_AUTHORITATIVE", f"RRSIG over {what}", name, covered)
        if kind is NodeKind.OCCLUDED:
            continue
        for rdtype, rds in sorted(data[name].items()):
            if not (zshape.is_signed_at(name, rdtype) or name not in zshape.kinds):
                continue
            rep.rrsets_checked += 1
            good_algs: set[int] = set()
            good_sep_algs: set[int] = set()
            seen_algs: set[int] = set()
            for sig in node_sigs.get(rdtype, []):
                seen_algs.add(sig.algorithm)  # type: ignore[attr-defined]
                ok, sep = _check_one(rep, name, rds, sig, keys, origin, now)
                if ok:
                    good_algs.add(sig.algorithm)  # type: ignore[attr-defined]
                    if sep:
                        good_sep_algs.add(sig.algorithm)  # type: ignore[attr-defined]
            for a in algs:
                if a not in seen_algs:
                    rep.add("RRSIG_MISSING", f"no RRSIG of algorithm {a}", name, rdtype)
            if rdtype == RdataType.DNSKEY and name == origin and not ignore_ksk:
                for a in algs:
                    if a in good_algs and a not in good_sep_algs:
                        rep.add(
                            "DNSKEY_NOT_SIGNED_BY_KSK",
                            f"the DNSKEY RRset is not signed by a SEP key of algorithm {a}",
                            name, rdtype,
                        )


def _check_one(
    rep: VerifyReport,
    name: dns.name.Name,
    rds: dns.rdataset.Rdataset,
    sig: dns.rdata.Rdata,
    keys: dict[tuple[int, int], list[_Key]],
    origin: dns.name.Name,
    now: int,
) -> tuple[bool, bool]:
    """Check one RRSIG over `rds`; report what is wrong. Returns (valid, by a SEP key)."""
    rdtype = rds.rdtype
    desc = f"RRSIG {sig.algorithm}/{sig.key_tag}"  # type: ignore[attr-defined]
    candidates = keys.get((sig.algorithm, sig.key_tag), [])  # type: ignore[attr-defined]
    ok = True
    if sig.signer != origin:  # type: ignore[attr-defined]
        rep.add("RRSIG_FIELDS_WRONG", f"{desc}: signer {sig.signer} is not the apex", name, rdtype)  # type: ignore[attr-defined]
        ok = False
    if sig.labels != rrsig_labels(name):  # type: ignore[attr-defined]
        rep.add("RRSIG_FIELDS_WRONG", f"{desc}: labels {sig.labels}, expected {rrsig_labels(name)}", name, rdtype)  # type: ignore[attr-defined]
        ok = False
    if sig.original_ttl != rds.ttl:  # type: ignore[attr-defined]
        rep.add("RRSIG_FIELDS_WRONG", f"{desc}: original TTL {sig.original_ttl} differs from the RRset TTL {rds.ttl}", name, rdtype)  # type: ignore[attr-defined]
    status = time_status(sig.inception, sig.expiration, now)  # type: ignore[attr-defined]
    if status == "expired":
        rep.add("RRSIG_EXPIRED", f"{desc} expired at {format_timestamp14(sig.expiration)}", name, rdtype)  # type: ignore[attr-defined]
        ok = False
    elif status == "not-yet-valid":
        rep.add("RRSIG_NOT_YET_VALID", f"{desc} is valid only from {format_timestamp14(sig.inception)}", name, rdtype)  # type: ignore[attr-defined]
        ok = False
    if not candidates:
        rep.add("RRSIG_UNKNOWN_KEY", f"{desc}: no such key in the apex DNSKEY RRset", name, rdtype)
        return False, False
    data = signature_data(name, rdtype, rds.rdclass, sig.original_ttl, list(rds), header_of(sig))  # type: ignore[arg-type, attr-defined]
    alg = algorithms.get(sig.algorithm)  # type: ignore[attr-defined]
    for k in candidates:
        if algorithms.verify(alg, k.pub, sig.signature, data):  # type: ignore[arg-type, attr-defined]
            rep.signatures_verified += 1
            return ok, bool(k.rdata.flags & FLAG_SEP)  # type: ignore[attr-defined]
    rep.add("RRSIG_BAD_SIGNATURE", f"{desc} does not verify", name, rdtype)
    return False, False


def _check_nsec(
    rep: VerifyReport,
    data: dict[dns.name.Name, dict[int, dns.rdataset.Rdataset]],
    zshape: ZoneShape,
    ttl: int,
) -> None:
    expected = zshape.authoritative()
    expected_set = set(expected)
    for name in sorted(data):
        if RdataType.NSEC in data[name] and name not in expected_set:
            rep.add("NSEC_CHAIN_BROKEN", "NSEC record at a name that is not authoritative", name, RdataType.NSEC)
    ttl_reported = False
    for i, name in enumerate(expected):
        rds = data.get(name, {}).get(RdataType.NSEC)
        if rds is None:
            rep.add("NSEC_MISSING", "authoritative name has no NSEC record", name)
            continue
        if len(rds) != 1:
            rep.add("NSEC_CHAIN_BROKEN", f"{len(rds)} NSEC records at one name", name, RdataType.NSEC)
        rd = rds[0]
        nxt = expected[(i + 1) % len(expected)]
        if rd.next != nxt:  # type: ignore[attr-defined]
            rep.add("NSEC_CHAIN_BROKEN", f"NSEC next name is {rd.next}, expected {nxt}", name, RdataType.NSEC)  # type: ignore[attr-defined]
        want = set(nsec_types(zshape.kinds[name], data[name]))
        have = bitmap_types(rd.windows)  # type: ignore[attr-defined]
        if want != have:
            rep.add("NSEC_BITMAP_WRONG", _bitmap_diff(have, want), name, RdataType.NSEC)
        if rds.ttl != ttl and not ttl_reported:
            ttl_reported = True
            rep.add("NSEC_TTL_WRONG", f"NSEC TTL {rds.ttl}, expected {ttl} (RFC 9077)", name, RdataType.NSEC)


def _bitmap_diff(have: set[int], want: set[int]) -> str:
    extra = " ".join(type_text(t) for t in sorted(have - want))
    missing = " ".join(type_text(t) for t in sorted(want - have))
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"lists absent {extra}")
    return "type bitmap " + "; ".join(parts)


def _check_nsec3(
    rep: VerifyReport,
    data: dict[dns.name.Name, dict[int, dns.rdataset.Rdataset]],
    zshape: ZoneShape,
    ttl: int,
) -> None:
    origin = rep.origin
    records: list[tuple[dns.name.Name, dns.rdataset.Rdataset]] = [
        (n, rs[RdataType.NSEC3]) for n, rs in data.items() if RdataType.NSEC3 in rs
    ]
    param_rds = data[origin].get(RdataType.NSEC3PARAM)
    params: tuple[int, int, bytes] | None = None
    if param_rds is not None:
        p = param_rds[0]
        params = (p.algorithm, p.iterations, p.salt)  # type: ignore[attr-defined]
    else:
        rep.add("NSEC3PARAM_MISSING", "no NSEC3PARAM at the apex", origin)
        if records:
            r = records[0][1][0]
            params = (r.algorithm, r.iterations, r.salt)  # type: ignore[attr-defined]
    if params is None:
        return
    alg, iterations, salt = params
    rep.nsec3 = {"algorithm": alg, "iterations": iterations, "salt": salt.hex() or "-"}
    if iterations > 0:
        rep.add("NSEC3_ITERATIONS_NONZERO", f"NSEC3 iterations {iterations} (RFC 9276: use 0)", origin, RdataType.NSEC3PARAM)
    if salt:
        rep.add("NSEC3_SALT_PRESENT", f"NSEC3 salt {salt.hex()} (RFC 9276: use none)", origin, RdataType.NSEC3PARAM)
    if alg != denial.NSEC3_SHA1:
        rep.add("NSEC3_PARAMS_INCONSISTENT", f"unknown NSEC3 hash algorithm {alg}", origin, RdataType.NSEC3PARAM)
        return

    chain: dict[bytes, tuple[dns.name.Name, dns.rdata.Rdata]] = {}
    opt_out = False
    inconsistent = False
    for owner, rds in records:
        rd = rds[0]
        if len(rds) != 1:
            rep.add("NSEC3_CHAIN_BROKEN", f"{len(rds)} NSEC3 records at one name", owner, RdataType.NSEC3)
        if (rd.algorithm, rd.iterations, rd.salt) != params:  # type: ignore[attr-defined]
            if not inconsistent:
                rep.add("NSEC3_PARAMS_INCONSISTENT", "NSEC3 parameters differ from NSEC3PARAM", owner, RdataType.NSEC3)
            inconsistent = True
            continue
        opt_out = opt_out or bool(rd.flags & denial.NSEC3_FLAG_OPTOUT)  # type: ignore[attr-defined]
        label = owner.relativize(origin)
        try:
            if len(label) != 1 or owner.parent() != origin:
                raise ValueError
            digest = base64.b32hexdecode(label.labels[0].upper())
        except (ValueError, TypeError, UnicodeDecodeError):
            rep.add("NSEC3_CHAIN_BROKEN", "NSEC3 owner is not a hash label under the apex", owner, RdataType.NSEC3)
            continue
        chain[digest] = (owner, rd)
        if rds.ttl != ttl:
            rep.add("NSEC_TTL_WRONG", f"NSEC3 TTL {rds.ttl}, expected {ttl} (RFC 9077)", owner, RdataType.NSEC3)
    if opt_out:
        rep.add("NSEC3_OPT_OUT", "NSEC3 opt-out in use", origin, RdataType.NSEC3)

    allowed = {denial.nsec3_digest(n, salt, iterations): n for n in nsec3_covered(zshape, data, False)}
    required = set(nsec3_covered(zshape, data, opt_out)) if opt_out else set(allowed.values())
    for digest, name in allowed.items():
        if digest not in chain and name in required:
            rep.add("NSEC3_MISSING", f"no NSEC3 record ({denial.b32hex(digest)}) for this name", name)
    order = sorted(chain)
    for i, digest in enumerate(order):
        owner, rd = chain[digest]
        nxt = order[(i + 1) % len(order)]
        if rd.next != nxt:  # type: ignore[attr-defined]
            rep.add(
                "NSEC3_CHAIN_BROKEN",
                f"next hashed owner is {denial.b32hex(rd.next)}, expected {denial.b32hex(nxt)}",  # type: ignore[attr-defined]
                owner, RdataType.NSEC3,
            )
        name = allowed.get(digest)
        if name is None:
            rep.add("NSEC3_CHAIN_BROKEN", "NSEC3 record matches no name of the zone", owner, RdataType.NSEC3)
            continue
        want = set(nsec3_types(zshape.kinds[name], data.get(name, {}), nsec3param=True))
        have = bitmap_types(rd.windows)  # type: ignore[attr-defined]
        if want != have:
            rep.add("NSEC3_BITMAP_WRONG", f"{name}: " + _bitmap_diff(have, want), owner, RdataType.NSEC3)
