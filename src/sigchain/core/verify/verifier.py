"""Whole-zone verification, the `dnssec-verify` equivalent (pure): every problem a Finding.

Checks (RFC 4033-4035, 5155, 6840 §5.11, 9077, 9276): every authoritative RRset has a valid
RRSIG from each algorithm of the apex DNSKEY RRset within its validity window at `now`; the
DNSKEY RRset is signed by a SEP key of each algorithm; the NSEC or NSEC3 chain is complete,
ordered, closed, with correct bitmaps and uniform parameters; glue, delegation NS and occluded
data carry no signatures.

The work is done on wire RRsets keyed by label tuples (core/zone/wire), not dnspython Names:
hashing and comparing Names is pure Python and dominated whole-zone runs. The signature
checks themselves go through a `Checker`, so the caller may spread them over processes.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.dnssec.rrsig import rrset_data, time_status
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.records import Key, key_of, key_wire, type_bitmap
from sigchain.core.zone.shape import (
    LABEL_KEYS,
    NodeKind,
    ZoneShape,
    bitmap_types,
    nsec3_covered,
    nsec3_types,
    nsec_types,
    shape,
    type_text,
)
from sigchain.core.zone.wire import (
    Rrsig,
    WireRRset,
    key_text,
    name_text,
    parse_rrsig,
    read_bitmap,
    read_name,
)
from sigchain.errors import InputError
from sigchain.findings import Finding, Param
from sigchain.model.keys import FLAG_REVOKE, FLAG_SEP, FLAG_ZONE

# One signature to check: (algorithm, indexes of candidate keys in the DNSKEY RRset's wire
# list, signature, signed data).
Job = tuple[int, tuple[int, ...], bytes, bytes]
# (DNSKEY wires, jobs) → a function returning, per job, the index of the key that verified
# it or -1. Returning a function lets a parallel checker work while the caller goes on.
Checker = Callable[[Sequence[bytes], Sequence[Job]], Callable[[], list[int]]]

CHUNK = 8000  # signatures planned per checker call: bounds memory on large zones


@dataclass
class VerifyReport:
    origin: dns.name.Name
    findings: list[Finding] = field(default_factory=list)
    denial: str = "none"  # nsec | nsec3 | none
    algorithms: list[int] = field(default_factory=list)
    rrsets_checked: int = 0
    signatures_verified: int = 0
    nsec3: dict[str, object] | None = None

    def add(self, code: str, params: Mapping[str, Param], name: dns.name.Name | str | None = None,
            rdtype: int | None = None) -> None:
        self.findings.append(self.finding(code, params, name, rdtype))

    @staticmethod
    def finding(code: str, params: Mapping[str, Param], name: dns.name.Name | str | None = None,
                rdtype: int | None = None) -> Finding:
        if isinstance(name, dns.name.Name):
            name = name.to_text()
        return Finding(code, params, name, type_text(rdtype) if rdtype is not None else None)


def public_key(dnskey_wire: bytes) -> object:
    """The public key of a DNSKEY's wire form (raises when unusable)."""
    _flags, _proto, alg = struct.unpack_from("!HBB", dnskey_wire)
    return algorithms.public_key_from_dnskey(algorithms.get(alg), dnskey_wire[4:])


def check_jobs(dnskeys: Sequence[bytes], jobs: Iterable[Job]) -> list[int]:
    """Per job, the index of the first candidate key whose signature verifies, or -1."""
    pubs: dict[int, object] = {}
    out = []
    for alg_n, candidates, signature, data in jobs:
        alg = algorithms.get(alg_n)
        hit = -1
        for i in candidates:
            pub = pubs.get(i)
            if pub is None:
                pub = pubs[i] = public_key(dnskeys[i])
            if algorithms.verify(alg, pub, signature, data):  # type: ignore[arg-type]
                hit = i
                break
        out.append(hit)
    return out


def serial_checker(dnskeys: Sequence[bytes], jobs: Sequence[Job]) -> Callable[[], list[int]]:
    return lambda: check_jobs(dnskeys, jobs)


def verify_records(
    rrsets: Iterable[WireRRset],
    origin: dns.name.Name,
    now: int,
    ignore_ksk: bool = False,
    checker: Checker = serial_checker,
    policy: DnssecPolicy = DEFAULT_POLICY,
) -> VerifyReport:
    """Verify a zone given as wire RRsets (several RRSIG RRsets at one name are merged);
    keys of algorithms the policy does not validate are left out, as a validator would."""
    rep = VerifyReport(origin)
    okey = key_of(origin)
    owners: dict[Key, str] = {}
    data: dict[Key, dict[int, WireRRset]] = {}
    sigs: dict[Key, dict[int, list[Rrsig]]] = {}
    signers: dict[bytes, Key] = {}
    signing_algs: set[int] = set()  # algorithms of every RRSIG in the zone
    for rr in rrsets:
        node = data.get(rr.key)
        if node is None:
            node = data[rr.key] = {}
            owners[rr.key] = rr.owner
        if rr.rdtype == RdataType.RRSIG:
            node_sigs = sigs.setdefault(rr.key, {})
            for wire in rr.wires:
                sig = parse_rrsig(wire, signers)
                node_sigs.setdefault(sig.type_covered, []).append(sig)
                signing_algs.add(sig.algorithm)
        else:
            node[rr.rdtype] = rr

    apex = data.get(okey, {})
    soa = apex.get(RdataType.SOA)
    if soa is None:  # every zone reader refuses such a file first (bad input, exit 2)
        raise InputError(f"no SOA record at the zone apex {origin}")
    dnskey = apex.get(RdataType.DNSKEY)
    if dnskey is None:
        rep.add("NO_DNSKEY", {"zone": origin.to_text()}, origin)
        return rep

    keys: dict[tuple[int, int], list[int]] = {}
    for i, wire in enumerate(dnskey.wires):
        flags, protocol, alg = struct.unpack_from("!HBB", wire)
        if not flags & FLAG_ZONE or protocol != 3 or flags & FLAG_REVOKE:
            continue
        if not policy.may_validate(alg):
            continue
        try:
            public_key(wire)
        except Exception:
            continue
        rd = dns.rdata.from_wire(dns.rdataclass.IN, RdataType.DNSKEY, wire, 0, len(wire))
        keys.setdefault((alg, dns.dnssec.key_id(rd)), []).append(i)  # type: ignore[arg-type]
    algs = sorted({a for a, _ in keys})
    rep.algorithms = algs

    # Zone shape: hashed NSEC3 owners (only NSEC3 + RRSIG) and RRSIG-only leftovers are not data.
    types_at = {n: set(rs) for n, rs in data.items()}
    zshape = shape(okey, types_at, ignore=frozenset({RdataType.NSEC3, RdataType.RRSIG}), ops=LABEL_KEYS)

    def text(key: Key) -> str:
        t = owners.get(key)
        return t if t is not None else key_text(key)

    # RFC 4035 §2.2, RFC 6840 §5.11: each algorithm of the DNSKEY RRset signs every RRset. One
    # that signs nothing at all is one finding, not a missing RRSIG on every RRset of the zone.
    for a in algs:
        if a not in signing_algs:
            rep.add("DNSKEY_ALGORITHM_UNSIGNED", {"algorithm": a}, origin, RdataType.DNSKEY)
    signing = [a for a in algs if a in signing_algs]
    _Signatures(rep, data, sigs, zshape, keys, dnskey.wires, text, now, checker).run(signing, ignore_ksk)
    has_nsec = any(RdataType.NSEC in ts for ts in types_at.values())
    has_nsec3 = any(RdataType.NSEC3 in ts for ts in types_at.values()) or RdataType.NSEC3PARAM in types_at[okey]
    if has_nsec and has_nsec3:
        rep.add("NSEC_AND_NSEC3", {})
    soa_minimum = struct.unpack("!I", soa.wires[0][-4:])[0]
    if has_nsec:
        rep.denial = "nsec"
        _check_nsec(rep, data, zshape, min(soa_minimum, soa.ttl), text)
    elif has_nsec3:
        rep.denial = "nsec3"
        _check_nsec3(rep, data, zshape, min(soa_minimum, soa.ttl), text)
    else:
        rep.add("NO_DENIAL_CHAIN", {}, origin)
    return rep


# A signature as planned: (algorithm, key tag, findings so far, fields ok, job index or -1
# when there is no such key).
_Planned = tuple[int, int, Sequence[Finding], bool, int]
_RR_FIXED = struct.Struct("!HHIH")  # type, class, TTL, rdata length (RFC 4034 §6.2)
_HALF = 1 << 31  # RRSIG times compare in serial arithmetic (RFC 4034 §3.1.5)


class _Signatures:
    """Every authoritative RRset's signatures: plan the checks a chunk at a time, hand the
    crypto to the checker, then report in canonical order (the next chunk is planned while
    the checker works on the last)."""

    def __init__(
        self,
        rep: VerifyReport,
        data: dict[Key, dict[int, WireRRset]],
        sigs: dict[Key, dict[int, list[Rrsig]]],
        zshape: ZoneShape,
        keys: dict[tuple[int, int], list[int]],
        dnskeys: tuple[bytes, ...],
        text: Callable[[Key], str],
        now: int,
        checker: Checker,
    ):
        self.rep, self.data, self.sigs, self.zshape = rep, data, sigs, zshape
        self.keys, self.dnskeys, self.text, self.now, self.checker = keys, dnskeys, text, now, checker
        self.okey = zshape.origin
        self.owire = key_wire(self.okey)

    def run(self, algs: list[int], ignore_ksk: bool) -> None:
        # pending: findings, or (name, rdtype, planned signatures) for an RRset
        pending: list[Finding | tuple[Key, int, list[_Planned]]] = []
        jobs: list[Job] = []
        in_flight: tuple[list, Callable[[], list[int]]] | None = None
        for name in sorted(self.data):
            self._plan_name(name, pending, jobs)
            if len(jobs) >= CHUNK:
                if in_flight is not None:
                    self._report(*in_flight, algs, ignore_ksk)
                in_flight = (pending, self.checker(self.dnskeys, jobs))
                pending, jobs = [], []
        if in_flight is not None:
            self._report(*in_flight, algs, ignore_ksk)
        self._report(pending, self.checker(self.dnskeys, jobs), algs, ignore_ksk)

    def _plan_name(self, name: Key, pending: list, jobs: list[Job]) -> None:
        zshape = self.zshape
        kind = zshape.kinds.get(name)
        nsec3_owner = kind is None  # names outside `kinds` are NSEC3 owners (or RRSIG-only)
        if kind is None:
            kind = NodeKind.AUTH
        node = self.data[name]
        node_sigs = self.sigs.get(name, {})
        for covered in sorted(node_sigs):
            if covered not in node or not (
                kind is not NodeKind.OCCLUDED and (nsec3_owner or zshape.is_signed_at(name, covered))
            ):
                what = "absent" if covered not in node else kind.value
                pending.append(self.rep.finding("RRSIG_ON_NON_AUTHORITATIVE", {"kind": what},
                                                self.text(name), covered))
        if kind is NodeKind.OCCLUDED:
            return
        owner_wire = None
        now = self.now
        labels = len(name) - (1 if name and name[-1] == b"*" else 0)
        for rdtype, rr in sorted(node.items()):
            if not (nsec3_owner or zshape.is_signed_at(name, rdtype)):
                continue
            self.rep.rrsets_checked += 1
            planned: list[_Planned] = []
            for sig in node_sigs.get(rdtype, ()):
                alg, tag = sig.algorithm, sig.key_tag
                found: Sequence[Finding]
                if (  # the common case, with no finding to make: skip the detailed checks
                    sig.signer == self.okey and sig.labels == labels and sig.original_ttl == rr.ttl
                    and sig.inception <= now <= sig.expiration and sig.expiration - sig.inception < _HALF
                ):
                    found, ok = (), True
                else:
                    found = []
                    ok = self._check_fields(found, name, rr, sig, labels)
                candidates = self.keys.get((alg, tag))
                if not candidates:
                    found = [*found, self.rep.finding(
                        "RRSIG_UNKNOWN_KEY", {"algorithm": alg, "tag": tag, "zone": self.text(self.okey)},
                        self.text(name), rdtype)]
                    planned.append((alg, tag, found, False, -1))
                    continue
                if owner_wire is None:
                    owner_wire = key_wire(name)
                if len(rr.wires) == 1:
                    w = rr.wires[0]
                    signed = sig.header + owner_wire + _RR_FIXED.pack(rdtype, 1, sig.original_ttl, len(w)) + w
                else:
                    signed = sig.header + rrset_data(owner_wire, rdtype, sig.original_ttl, rr.wires)
                planned.append((alg, tag, found, ok, len(jobs)))
                jobs.append((alg, tuple(candidates), sig.signature, signed))
            pending.append((name, rdtype, planned))

    def _check_fields(self, found: list[Finding], name: Key, rr: WireRRset, sig: Rrsig,
                      labels: int) -> bool:
        """Signer, labels, original TTL and validity window; False when the RRSIG is unusable."""
        where, rdtype = self.text(name), rr.rdtype
        ids = {"algorithm": sig.algorithm, "tag": sig.key_tag}

        def add(code: str, **params: Param) -> None:
            found.append(self.rep.finding(code, {**ids, **params}, where, rdtype))

        ok = True
        if sig.signer != self.okey:
            signer = name_text(read_name(sig.header, 18)[0])
            add("RRSIG_FIELDS_WRONG", field="signer", found=signer, expected=self.text(self.okey))
            ok = False
        if sig.labels != labels:
            add("RRSIG_FIELDS_WRONG", field="labels", found=sig.labels, expected=labels)
            ok = False
        if sig.original_ttl != rr.ttl:
            add("RRSIG_FIELDS_WRONG", field="original TTL", found=sig.original_ttl, expected=rr.ttl)
        status = time_status(sig.inception, sig.expiration, self.now)
        if status == "expired":
            add("RRSIG_EXPIRED", expiration=sig.expiration)
            ok = False
        elif status == "not-yet-valid":
            add("RRSIG_NOT_YET_VALID", inception=sig.inception)
            ok = False
        return ok

    def _report(self, pending: list, results: Callable[[], list[int]], algs: list[int], ignore_ksk: bool) -> None:
        rep = self.rep
        hits = results()
        for item in pending:
            if isinstance(item, Finding):
                rep.findings.append(item)
                continue
            name, rdtype, planned = item
            where = self.text(name)
            good_algs: set[int] = set()
            good_sep_algs: set[int] = set()
            seen_algs: set[int] = set()
            for alg, tag, found, ok, job in planned:
                seen_algs.add(alg)
                rep.findings.extend(found)
                if job < 0:
                    continue
                hit = hits[job]
                if hit < 0:
                    rep.add("RRSIG_BAD_SIGNATURE", {"algorithm": alg, "tag": tag}, where, rdtype)
                    continue
                rep.signatures_verified += 1
                if ok:
                    good_algs.add(alg)
                    if struct.unpack_from("!H", self.dnskeys[hit])[0] & FLAG_SEP:
                        good_sep_algs.add(alg)
            for a in algs:
                if a not in seen_algs:
                    rep.add("RRSIG_MISSING", {"algorithm": a, "zone": self.text(self.okey)}, where, rdtype)
            if rdtype == RdataType.DNSKEY and name == self.okey and not ignore_ksk:
                for a in algs:
                    if a in good_algs and a not in good_sep_algs:
                        rep.add("DNSKEY_NOT_SIGNED_BY_KSK", {"algorithm": a}, where, rdtype)


def _check_nsec(
    rep: VerifyReport,
    data: dict[Key, dict[int, WireRRset]],
    zshape: ZoneShape,
    ttl: int,
    text: Callable[[Key], str],
) -> None:
    expected = zshape.authoritative()
    expected_set = set(expected)
    for name in sorted(data):
        if RdataType.NSEC in data[name] and name not in expected_set:
            rep.add("NSEC_CHAIN_BROKEN", {"record": "NSEC", "field": "owner", "found": text(name),
                    "expected": "an authoritative name"}, text(name), RdataType.NSEC)
    ttl_reported = False
    for i, name in enumerate(expected):
        rr = data.get(name, {}).get(RdataType.NSEC)
        if rr is None:
            rep.add("NSEC_MISSING", {}, text(name))
            continue
        if len(rr.wires) != 1:
            rep.add("NSEC_CHAIN_BROKEN", _one_record("NSEC", len(rr.wires)), text(name), RdataType.NSEC)
        wire = rr.wires[0]
        next_labels, end = read_name(wire, 0)
        nxt = expected[(i + 1) % len(expected)]
        if tuple(label.lower() for label in reversed(next_labels)) != nxt:
            rep.add("NSEC_CHAIN_BROKEN", {"record": "NSEC", "field": "next name",
                    "found": name_text(next_labels), "expected": text(nxt)}, text(name), RdataType.NSEC)
        diff = _bitmap_check(wire, end, nsec_types(zshape.kinds[name], data[name]))
        if diff:
            rep.add("NSEC_BITMAP_WRONG", diff, text(name), RdataType.NSEC)
        if rr.ttl != ttl and not ttl_reported:
            ttl_reported = True
            rep.add("NSEC_TTL_WRONG", {"record": "NSEC", "ttl": rr.ttl, "expected": ttl}, text(name),
                    RdataType.NSEC)


_bitmaps: dict[tuple[int, ...], bytes] = {}


def _bitmap_check(wire: bytes, pos: int, want: list[int]) -> dict[str, Param] | None:
    """None when the type bitmap at `pos` lists exactly `want` (sorted), else what differs.
    A zone has few distinct type sets: their canonical bitmaps are kept and compared whole."""
    key = tuple(want)
    expected = _bitmaps.get(key)
    if expected is None:
        expected = _bitmaps[key] = type_bitmap(want)[0]
    if wire[pos:] == expected:
        return None
    have = bitmap_types(read_bitmap(wire, pos))
    return _bitmap_diff(have, set(want)) if have != set(want) else None


def _bitmap_diff(have: set[int], want: set[int]) -> dict[str, Param]:
    """The types a bitmap lacks and the types it lists that are not there."""
    return {"missing": [type_text(t) for t in sorted(want - have)],
            "extra": [type_text(t) for t in sorted(have - want)]}


def _one_record(record: str, count: int) -> dict[str, Param]:
    return {"record": record, "field": "records at one name", "found": count, "expected": 1}


def _params_text(alg: int, iterations: int, salt: bytes) -> str:
    """NSEC3 parameters as NSEC3PARAM presents them: algorithm, iterations, salt (RFC 5155 §4.3)."""
    return f"{alg} {iterations} {salt.hex().upper() or '-'}"


def _nsec3_fields(wire: bytes) -> tuple[int, int, int, bytes, int]:
    """(algorithm, flags, iterations, salt, offset after the salt) of NSEC3 or NSEC3PARAM."""
    alg, flags, iterations, salt_len = struct.unpack_from("!BBHB", wire)
    return alg, flags, iterations, wire[5 : 5 + salt_len], 5 + salt_len


def _check_nsec3(
    rep: VerifyReport,
    data: dict[Key, dict[int, WireRRset]],
    zshape: ZoneShape,
    ttl: int,
    text: Callable[[Key], str],
) -> None:
    origin = rep.origin
    okey = zshape.origin
    records = [(n, rs[RdataType.NSEC3]) for n, rs in data.items() if RdataType.NSEC3 in rs]
    param_rr = data[okey].get(RdataType.NSEC3PARAM)
    params: tuple[int, int, bytes] | None = None
    if param_rr is not None:
        a, _, it, s, _ = _nsec3_fields(param_rr.wires[0])
        params = (a, it, s)
    else:
        rep.add("NSEC3PARAM_MISSING", {}, origin)
        if records:
            a, _, it, s, _ = _nsec3_fields(records[0][1].wires[0])
            params = (a, it, s)
    if params is None:
        return
    alg, iterations, salt = params
    rep.nsec3 = {"algorithm": alg, "iterations": iterations, "salt": salt.hex() or "-"}
    if iterations > 0:
        rep.add("NSEC3_ITERATIONS_NONZERO", {"iterations": iterations}, origin, RdataType.NSEC3PARAM)
    if salt:
        rep.add("NSEC3_SALT_PRESENT", {"salt": salt.hex()}, origin, RdataType.NSEC3PARAM)
    if alg != nsec3hash.NSEC3_SHA1:
        rep.add("NSEC3_PARAMS_INCONSISTENT", {"field": "hash algorithm", "found": alg,
                "expected": nsec3hash.NSEC3_SHA1}, origin, RdataType.NSEC3PARAM)
        return

    # digest → (owner, next hashed owner, NSEC3 wire, where its type bitmap starts)
    chain: dict[bytes, tuple[Key, bytes, bytes, int]] = {}
    opt_out = False
    inconsistent = False
    depth = len(okey) + 1
    for owner, rr in records:
        if len(rr.wires) != 1:
            rep.add("NSEC3_CHAIN_BROKEN", _one_record("NSEC3", len(rr.wires)), text(owner), RdataType.NSEC3)
        r_alg, flags, r_iterations, r_salt, pos = _nsec3_fields(rr.wires[0])
        if (r_alg, r_iterations, r_salt) != params:
            if not inconsistent:
                rep.add("NSEC3_PARAMS_INCONSISTENT", {"field": "parameters",
                        "found": _params_text(r_alg, r_iterations, r_salt),
                        "expected": _params_text(*params)}, text(owner), RdataType.NSEC3)
            inconsistent = True
            continue
        opt_out = opt_out or bool(flags & nsec3hash.NSEC3_FLAG_OPTOUT)
        try:
            if len(owner) != depth or owner[:-1] != okey:
                raise ValueError
            label = owner[-1]
            if len(label) % 8 == 0 and label.isalnum():  # base32hex digits are int()'s base 32
                digest = int(label, 32).to_bytes(len(label) * 5 // 8, "big")
            else:
                digest = base64.b32hexdecode(label.upper())
        except (ValueError, TypeError):
            rep.add("NSEC3_CHAIN_BROKEN", {"record": "NSEC3", "field": "owner", "found": text(owner),
                    "expected": "a hash label under the apex"}, text(owner), RdataType.NSEC3)
            continue
        wire = rr.wires[0]
        next_len = wire[pos]
        chain[digest] = (owner, wire[pos + 1 : pos + 1 + next_len], wire, pos + 1 + next_len)
        if rr.ttl != ttl:
            rep.add("NSEC_TTL_WRONG", {"record": "NSEC3", "ttl": rr.ttl, "expected": ttl}, text(owner),
                    RdataType.NSEC3)
    if opt_out:
        rep.add("NSEC3_OPT_OUT", {}, origin, RdataType.NSEC3)

    allowed = {
        nsec3hash.nsec3_digest_wire(key_wire(n), salt, iterations): n for n in nsec3_covered(zshape, data, False)
    }
    required = set(nsec3_covered(zshape, data, opt_out)) if opt_out else set(allowed.values())
    for digest, name in allowed.items():
        if digest not in chain and name in required:
            rep.add("NSEC3_MISSING", {"hash": nsec3hash.b32hex(digest)}, text(name))
    order = sorted(chain)
    for i, digest in enumerate(order):
        owner, next_hash, wire, bitmap_at = chain[digest]
        nxt = order[(i + 1) % len(order)]
        if next_hash != nxt:
            rep.add("NSEC3_CHAIN_BROKEN", {"record": "NSEC3", "field": "next hashed owner",
                    "found": nsec3hash.b32hex(next_hash), "expected": nsec3hash.b32hex(nxt)},
                    text(owner), RdataType.NSEC3)
        name = allowed.get(digest)
        if name is None:
            rep.add("NSEC3_CHAIN_BROKEN", {"record": "NSEC3", "field": "hash", "found": nsec3hash.b32hex(digest),
                    "expected": "the hash of a name of the zone"}, text(owner), RdataType.NSEC3)
            continue
        diff = _bitmap_check(wire, bitmap_at, nsec3_types(zshape.kinds[name], data.get(name, {}), nsec3param=True))
        if diff:
            rep.add("NSEC3_BITMAP_WRONG", {"name": text(name), **diff}, text(owner), RdataType.NSEC3)
