"""Zone signing (pure): key selection, DNSKEY/CDS/NSEC3PARAM at the apex, RRSIGs, NSEC/NSEC3.

The zone comes in as rdatasets per owner name and goes out as signed rdatasets per owner
name in canonical order. Each RRset is signed by `rrsig.sign_rrset`, which needs nothing
but its arguments, so the per-RRset work can be shared out to worker processes.
"""

from __future__ import annotations

import base64
import bisect
import functools
import hashlib
import heapq
import operator
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms, ds
from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.dnssec.rrsig import SigWindow, rrset_data
from sigchain.core.dnssec.timefmt import format_timestamp14
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.records import (
    Key,
    RRsetRec,
    b32hex,
    b32hex_decode,
    from_rdataset,
    from_rdatasets,
    key_of,
    key_wire,
    name_of,
    type_bitmap,
    type_text,
)
from sigchain.core.zone.shape import (
    DNSSEC_GENERATED,
    LABEL_KEYS,
    NodeKind,
    nsec3_covered,
    nsec3_types,
    nsec_types,
    shape,
)
from sigchain.errors import InputError, UnsafeRefused
from sigchain.findings import Finding
from sigchain.model.keys import KeyPair

Zone = Mapping[dns.name.Name, Sequence[dns.rdataset.Rdataset]]

_KSK_SIGNED = (RdataType.DNSKEY, RdataType.CDS, RdataType.CDNSKEY)


@dataclass(frozen=True)
class SignOptions:
    window: SigWindow
    nsec3: nsec3hash.Nsec3Params | None = None
    cds: bool = False
    deterministic: bool = False
    serial: str = "keep"  # keep | increment | unixtime
    force: bool = False


@dataclass(frozen=True)
class KeyPlan:
    """Which keys are in the DNSKEY RRset and which sign what, at `now`."""

    published: list[KeyPair]
    ksk_signers: dict[int, list[KeyPair]]  # algorithm → keys signing DNSKEY/CDS/CDNSKEY
    zsk_signers: dict[int, list[KeyPair]]  # algorithm → keys signing everything else
    warnings: list[Finding]


def plan_keys(keys: Sequence[KeyPair], origin: dns.name.Name, now: int, force: bool,
              policy: DnssecPolicy = DEFAULT_POLICY) -> KeyPlan:
    """Apply BIND timing metadata (as `dnssec-signzone -S`), the KSK/ZSK/CSK rules and the
    policy's signing algorithms."""
    warnings: list[Finding] = []
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
        policy.check_may_sign(algorithms.get(a), force)
        seps = [k for k in active if k.algorithm == a and k.is_sep]
        zones = [k for k in active if k.algorithm == a and not k.is_sep]
        if not seps and not zones:
            unsigned = Finding("SIGN_ALGORITHM_NO_ACTIVE_KEY", {"algorithm": a})
            if not force:
                raise UnsafeRefused(unsigned.message)
            warnings.append(unsigned)
            continue
        if not seps:
            warnings.append(Finding("SIGN_NO_ACTIVE_KSK", {"algorithm": a}))
        ksk[a] = seps or zones
        zsk[a] = zones or seps  # a KSK whose algorithm has no ZSK acts as a CSK
    return KeyPlan(published, ksk, zsk, warnings)


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


def _apex(
    apex: dict[int, dns.rdataset.Rdataset],
    origin: dns.name.Name,
    keys: Sequence[KeyPair],
    plan: KeyPlan,
    opts: SignOptions,
    now: int,
    warnings: list[Finding],
) -> None:
    """Set the apex DNSSEC records in place: DNSKEY from the key directory (plus foreign
    keys already in the zone), CDS/CDNSKEY with --cds, NSEC3PARAM, and the SOA serial."""
    soa_rds = apex.get(RdataType.SOA)
    if soa_rds is None:
        raise InputError(f"no SOA record at the zone apex {origin}")
    soa: dns.rdtypes.ANY.SOA.SOA = soa_rds[0]  # type: ignore[assignment]
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
            warnings.append(Finding("CDS_NO_ACTIVE_KSK", {}))
    if opts.nsec3 is not None:
        apex[RdataType.NSEC3PARAM] = _rdataset(
            RdataType.NSEC3PARAM, 0, [nsec3hash.nsec3param_rdata(opts.nsec3)]
        )
    new_serial = next_serial(soa.serial, opts.serial, now)
    if new_serial != soa.serial:
        apex[RdataType.SOA] = _rdataset(RdataType.SOA, soa_rds.ttl, [soa.replace(serial=new_serial)])


_by_owner_type = operator.itemgetter(0, 2)  # an RRsetRec's (key, rdtype): canonical order


def _unit_owner(u: tuple[RRsetRec, int]) -> Key:
    return u[0][0]


UNSIGNED, BY_ZSK, BY_KSK = 0, 1, 2


class Batch(NamedTuple):
    """A stretch of the output in canonical order, for one worker: the data RRsets with who
    signs each, and the denial records of the same stretch, still to be built (the worker
    builds them, so the main process does not spend its time on a million record texts)."""

    rrsets: list[RRsetRec]
    roles: bytes  # UNSIGNED, BY_ZSK or BY_KSK for each of `rrsets`
    # NSEC: (key, owner, next key, bitmap); NSEC3: (hashed label, next hashed label, bitmap)
    denial: list[tuple]  # type: ignore[type-arg]

    @property
    def units(self) -> int:
        """How many RRsets of the output this batch makes."""
        return len(self.rrsets) + len(self.denial)


@dataclass(frozen=True)
class SigningContext:
    """Everything a worker needs to sign batches: no global state."""

    signer_wire: bytes
    signer_text: str
    keys: tuple[KeyPair, ...]
    zsk: tuple[int, ...]  # indexes into `keys`
    ksk: tuple[int, ...]
    window: SigWindow
    deterministic: bool
    denial_ttl: int = 0
    nsec3: nsec3hash.Nsec3Params | None = None


@dataclass
class Prepared:
    """A zone ready to sign: the output in canonical order, in batches made on demand."""

    origin: dns.name.Name
    batches: Callable[[int], Iterator[Batch]]  # batches of about N units; consume once
    total: int  # how many units (output RRsets) the batches hold
    ctx: SigningContext
    warnings: list[Finding]
    ksk_signs_dnskey: bool  # every algorithm has a SEP key signing the DNSKEY RRset
    published: list[KeyPair]


def prepare(
    rrsets: Iterable[RRsetRec], origin: dns.name.Name, keys: Sequence[KeyPair], opts: SignOptions, now: int
) -> Prepared:
    """Everything but the signatures: apex records, zone shape, the NSEC/NSEC3 chain order."""
    plan = plan_keys(keys, origin, now, opts.force)
    warnings = list(plan.warnings)
    okey = key_of(origin)
    olen = len(okey)

    # 1. The unsigned data in canonical order; what a signer makes is dropped.
    data = sorted((r for r in rrsets if r.rdtype not in DNSSEC_GENERATED), key=_by_owner_type)
    apex_in: dict[int, dns.rdataset.Rdataset] = {}
    napex = 0
    for r in data:
        if r.key != okey:
            break
        napex += 1
        apex_in[r.rdtype] = _rdataset(
            r.rdtype, r.ttl, [dns.rdata.from_text(dns.rdataclass.IN, r.rdtype, t) for t in r.texts]
        )
    # Sorted, so names outside the zone are at either end of the body.
    if len(data) > napex and (data[napex].key[:olen] != okey or data[-1].key[:olen] != okey):
        r = next(r for r in data[napex:] if r.key[:olen] != okey)
        raise InputError(f"{r.owner} is outside the zone {origin}")
    _apex(apex_in, origin, keys, plan, opts, now, warnings)
    soa_rds = apex_in[RdataType.SOA]
    denial_ttl = min(soa_rds[0].minimum, soa_rds.ttl)  # type: ignore[attr-defined]  # RFC 9077
    data[:napex] = sorted(from_rdataset(origin, rds) for rds in apex_in.values())

    # 2. The types at each name and the zone shape.
    types_at: dict[Key, tuple[int, ...]] = {}
    prev: Key | None = None
    acc: list[int] = []
    for r in data:
        k = r[0]
        if k != prev:
            if prev is not None:
                types_at[prev] = tuple(acc)
            prev, acc = k, []
        acc.append(r[2])
    if prev is not None:
        types_at[prev] = tuple(acc)
    zshape = shape(okey, types_at, ops=LABEL_KEYS)
    kinds = zshape.kinds
    for k, ts in types_at.items():
        if RdataType.DS in ts and kinds[k] is NodeKind.AUTH:
            owner = next(r.owner for r in data if r.key == k)
            raise InputError(f"{owner}: DS record without NS (a DS belongs at a delegation)")

    # 3. The denial chain's order. Bitmaps repeat (a few type combinations in the whole
    # zone): compute each once. The records themselves are built by the workers.
    origin_text = origin.to_text()
    bitmaps: dict[tuple[int, tuple[int, ...]], tuple[bytes, str]] = {}
    kind_codes = {kind: i for i, kind in enumerate(NodeKind)}

    def bitmap(k: Key) -> tuple[bytes, str]:
        kind, types = kinds[k], types_at.get(k, ())
        got = bitmaps.get((kind_codes[kind], types))  # not keyed by the enum: its hash is slow
        if got is None:
            wanted = nsec_types(kind, types) if opts.nsec3 is None else nsec3_types(kind, types, True)
            got = bitmaps[(kind_codes[kind], types)] = type_bitmap(wanted)
        return got

    def ring(items: list, i: int, j: int) -> list:  # type: ignore[type-arg]
        """items[i + 1 : j + 1], wrapping around to the first."""
        if j == i:
            return []
        return items[i + 1 : j + 1] if j < len(items) else items[i + 1 : j] + items[:1]

    chain: list  # type: ignore[type-arg]  # what the denial records are made from, in order
    chain_order: Callable[[object], tuple[Key, int]]
    if opts.nsec3 is None:
        chain = [k for k in zshape.order if kinds[k] in (NodeKind.APEX, NodeKind.AUTH, NodeKind.DELEGATION)]
        owners = {r[0]: r[1] for r in data}

        def chain_order(k: object) -> tuple[Key, int]:
            return k, 1 << 16  # type: ignore[return-value]  # after the name's data RRsets

        def chain_entries(i: int, j: int) -> list[tuple]:  # type: ignore[type-arg]
            here = chain[i:j]
            return list(zip(here, map(owners.__getitem__, here), ring(chain, i, j), map(bitmap, here), strict=True))
    else:
        p = opts.nsec3
        covered = nsec3_covered(zshape, types_at, p.opt_out)
        owire = key_wire(okey)
        salt, iterations = p.salt, p.iterations
        sha1 = hashlib.sha1

        def hashed_label(k: Key) -> bytes:
            if len(k) == olen + 1:  # most names: one label below the apex
                wire = bytes((len(k[-1]),)) + k[-1] + owire
            else:
                wire = key_wire(k)
            d = nsec3hash.nsec3_digest_wire(wire, salt, iterations) if iterations else sha1(wire + salt).digest()
            return b32hex(d).encode()

        hashed: dict[bytes, tuple[bytes, str]] = {}  # hashed owner label → its type bitmap
        for k in covered:
            label = hashed_label(k)
            if label in hashed:
                other = next(o for o in covered if hashed_label(o) == label)
                raise UnsafeRefused(
                    f"NSEC3 hash collision between {name_of(other)} and {name_of(k)}: choose another salt"
                )
            hashed[label] = bitmap(k)
        chain = sorted(hashed)  # base32hex keeps the hashes' order
        for k in types_at:  # a real name that looks like a hashed owner
            if len(k) == olen + 1 and k[-1] in hashed:
                raise UnsafeRefused(f"NSEC3 owner {name_of(k).to_text()} collides with a name in the zone")

        def chain_order(label: object) -> tuple[Key, int]:
            return okey + (label,), RdataType.NSEC3  # type: ignore[operator]

        def chain_entries(i: int, j: int) -> list[tuple]:  # type: ignore[type-arg]
            here = chain[i:j]
            return list(zip(here, ring(chain, i, j), map(hashed.__getitem__, here), strict=True))

    # 4. Batches: stretches of the canonical order, each RRset with who signs it (RFC 4035
    # §2.2), made as the signing pool takes them.
    auth, deleg, apex_kind = NodeKind.AUTH, NodeKind.DELEGATION, NodeKind.APEX

    def roles(seg: list[RRsetRec]) -> bytes:
        out = bytearray()
        add = out.append
        for r in seg:
            kind = kinds[r[0]]
            if kind is auth:
                add(BY_ZSK)
            elif kind is deleg:
                add(BY_ZSK if r[2] == RdataType.DS else UNSIGNED)
            elif kind is apex_kind:
                add(BY_KSK if r[2] in _KSK_SIGNED else BY_ZSK)
            else:
                add(UNSIGNED)
        return bytes(out)

    def batches(size: int) -> Iterator[Batch]:
        di = ci = 0
        nd, nc = len(data), len(chain)
        while di < nd or ci < nc:
            dj = min(di + size, nd)
            cj = nc if dj == nd else bisect.bisect_left(chain, _by_owner_type(data[dj]), ci, nc, key=chain_order)
            if cj - ci > size:  # a long stretch of the chain between two data RRsets
                cj = ci + size
                dj = bisect.bisect_left(data, chain_order(chain[cj]), di, dj, key=_by_owner_type)
            seg = data[di:dj]
            yield Batch(seg, roles(seg), chain_entries(ci, cj))
            di, ci = dj, cj

    signing = [k for ks in plan.zsk_signers.values() for k in ks]
    signing += [k for ks in plan.ksk_signers.values() for k in ks if k not in signing]
    ctx = SigningContext(
        key_wire(okey), origin_text, tuple(signing),
        tuple(i for i, k in enumerate(signing) if any(k in ks for ks in plan.zsk_signers.values())),
        tuple(i for i, k in enumerate(signing) if any(k in ks for ks in plan.ksk_signers.values())),
        opts.window, opts.deterministic, denial_ttl, opts.nsec3,
    )
    ksk_signs = all(any(k.is_sep for k in ks) for ks in plan.ksk_signers.values())
    return Prepared(origin, batches, len(data) + len(chain), ctx, warnings, ksk_signs, plan.published)


def _denial_units(entries: list[tuple], ctx: SigningContext) -> list[tuple[RRsetRec, int]]:  # type: ignore[type-arg]
    """Build a batch's NSEC or NSEC3 RRsets from what `prepare` sent."""
    ttl = ctx.denial_ttl
    p = ctx.nsec3
    out: list[tuple[RRsetRec, int]] = []
    if p is None:
        for k, owner, nk, (bits, bits_text) in entries:
            out.append((RRsetRec(
                k, owner, RdataType.NSEC, ttl, (key_wire(nk) + bits,), (f"{name_of(nk).to_text()} {bits_text}",),
            ), BY_ZSK))
        return out
    okey = key_of(dns.name.from_wire(ctx.signer_wire, 0)[0])
    suffix = "." + ctx.signer_text
    flags = nsec3hash.NSEC3_FLAG_OPTOUT if p.opt_out else 0
    head = struct.pack("!BBHB", p.algorithm, flags, p.iterations, len(p.salt)) + p.salt
    fields = f"{p.algorithm} {flags} {p.iterations} {p.salt.hex().upper() or '-'} "
    for label, next_label, (bits, bits_text) in entries:
        nxt = b32hex_decode(next_label)
        out.append((RRsetRec(
            okey + (label,), label.decode() + suffix, RdataType.NSEC3, ttl,
            (head + bytes((len(nxt),)) + nxt + bits,),
            ((fields + next_label.decode().upper() + " " + bits_text).rstrip(),),
        ), BY_ZSK))
    return out


def _signer_for(alg: algorithms.Algorithm, key: KeyPair, deterministic: bool) -> Callable[[bytes], bytes]:
    """`algorithms.sign` for one key, with the ECDSA scheme object made once, not per call."""
    if alg.family == "ecdsa" and alg.hash is not None:
        scheme = ec.ECDSA(alg.hash(), deterministic_signing=deterministic)  # type: ignore[call-arg]
        sign, size = key.private.sign, alg.size  # type: ignore[union-attr]

        def ecdsa(data: bytes) -> bytes:
            r, s = decode_dss_signature(sign(data, scheme))  # type: ignore[call-arg, arg-type]
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")

        return ecdsa
    return functools.partial(_sign_with, alg, key.private, deterministic)


def _sign_with(alg: algorithms.Algorithm, private: object, deterministic: bool, data: bytes) -> bytes:
    return algorithms.sign(alg, private, data, deterministic)  # type: ignore[arg-type]


class _Timestamps:
    """YYYYMMDDHHMMSS for 32-bit RRSIG times, by arithmetic within a day: with jitter, nearly
    every signature has its own expiration, and strftime per signature is slow."""

    def __init__(self) -> None:
        self.days: dict[int, str] = {}

    def __call__(self, t: int) -> str:
        day, sec = divmod(t, 86400)
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = format_timestamp14(day * 86400)[:8]
        return f"{prefix}{sec // 3600:02d}{sec // 60 % 60:02d}{sec % 60:02d}"


def sign_units(batch: Batch, ctx: SigningContext) -> tuple[str, list[int]]:
    """Sign and render a batch as master-file lines; also count signatures per key.
    Pure: a worker process needs only its arguments."""
    out: list[str] = []
    add = out.append
    counts = [0] * len(ctx.keys)
    w = ctx.window
    signers = [_signer_for(algorithms.get(k.algorithm), k, ctx.deterministic) for k in ctx.keys]
    # What does not change from one signature to the next, per key: algorithm, key tag, signer.
    tails = [(struct.pack("!H", k.key_tag) + ctx.signer_wire, f" {k.key_tag} {ctx.signer_text} ") for k in ctx.keys]
    zsk = [(i, ctx.keys[i].algorithm, signers[i], *tails[i]) for i in ctx.zsk]
    ksk = [(i, ctx.keys[i].algorithm, signers[i], *tails[i]) for i in ctx.ksk]
    inception = w.inception % (1 << 32)
    stamp = _Timestamps()
    inc_text = stamp(inception)  # the 32-bit field's value (RFC 4034 §3.1.5)
    pack = struct.pack
    b64 = base64.b64encode
    expiration_for = w.expiration_for
    units: Iterable[tuple[RRsetRec, int]] = zip(batch.rrsets, batch.roles, strict=True)
    if batch.denial:  # a name's NSEC goes after its data
        units = heapq.merge(units, _denial_units(batch.denial, ctx), key=_unit_owner)
    for r, role in units:
        key, owner, rdtype, ttl, wires, texts = r
        tname = type_text(rdtype)
        prefix = f"{owner} {ttl} IN {tname} "
        if len(texts) == 1:
            add(prefix + texts[0] + "\n")
        else:
            out.extend([prefix + t + "\n" for t in texts])
        if not role:
            continue
        owner_wire = key_wire(key)
        labels = len(key) - (1 if key and key[-1] == b"*" else 0)
        expiration = expiration_for(owner_wire, rdtype) % (1 << 32)
        exp_text = stamp(expiration)
        body = rrset_data(owner_wire, rdtype, ttl, wires)
        fixed = pack("!III", ttl, expiration, inception)  # original TTL, expiration, inception
        rr_text = f"{owner} {ttl} IN RRSIG {tname} "
        for i, alg, sign, tail_wire, tail_text in ksk if role == BY_KSK else zsk:
            sig = sign(pack("!HBB", rdtype, alg, labels) + fixed + tail_wire + body)
            add(
                f"{rr_text}{alg} {labels} {ttl} {exp_text} {inc_text}{tail_text}{b64(sig).decode()}\n"
            )
            counts[i] += 1
    return "".join(out), counts


@dataclass
class SignResult:
    origin: dns.name.Name
    text: str  # the signed zone as master-file text, canonical order
    warnings: list[Finding] = field(default_factory=list)
    signatures: int = 0
    ksk_signs_dnskey: bool = True
    keys: list[dict[str, object]] = field(default_factory=list)

    def to_zone(self) -> dict[dns.name.Name, list[dns.rdataset.Rdataset]]:
        """The signed zone as rdatasets per owner name."""
        z = dns.zone.from_text(self.text, self.origin, relativize=False, check_origin=False)
        return {name: list(node.rdatasets) for name, node in z.nodes.items()}


def key_summary(published: Sequence[KeyPair], ctx: SigningContext, counts: Sequence[int]) -> list[dict[str, object]]:
    by_key = {id(k): counts[i] for i, k in enumerate(ctx.keys)}
    return [
        {
            "key_tag": k.key_tag, "algorithm": k.algorithm, "flags": k.flags, "file": k.source,
            "signatures": by_key.get(id(k), 0),
            "state": "active" if by_key.get(id(k)) else "published",
        }
        for k in published
    ]


def sign_zone(
    zone: Zone, origin: dns.name.Name, keys: Sequence[KeyPair], opts: SignOptions, now: int
) -> SignResult:
    """Sign an in-memory zone in this process (the CLI shares the same work out to a pool)."""
    for name in zone:
        for rds in zone[name]:
            if rds.rdclass != dns.rdataclass.IN:
                raise InputError(f"{name}: class {dns.rdataclass.to_text(rds.rdclass)} is not IN")
    prep = prepare(from_rdatasets(zone), origin, keys, opts, now)
    texts: list[str] = []
    counts = [0] * len(prep.ctx.keys)
    for batch in prep.batches(max(prep.total, 1)):
        text, c = sign_units(batch, prep.ctx)
        texts.append(text)
        counts = [a + b for a, b in zip(counts, c, strict=True)]
    text = "".join(texts)
    return SignResult(
        origin, text, prep.warnings, sum(counts), prep.ksk_signs_dnskey,
        key_summary(prep.published, prep.ctx, counts),
    )
