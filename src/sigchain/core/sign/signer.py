"""Zone signing (pure): `prepare` turns the zone's RRsets and keys into a `Prepared` zone,
everything but the signatures, whose batches `batches.sign_units` signs (in worker processes).

The zone comes in as RRsets (`RRsetRec`) and goes out as master-file text in canonical
order. The pieces: `keyset` (which keys sign what), `apex` (DNSKEY, CDS/CDNSKEY, NSEC3PARAM,
serial), `chains` (NSEC/NSEC3), `batches` (cutting and signing), `render` (text).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
from dns.rdatatype import RdataType

from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.sign import batches as batching
from sigchain.core.sign.apex import rdataset, set_apex
from sigchain.core.sign.batches import Batch, SigningContext, by_owner_type
from sigchain.core.sign.chains import Bitmaps, Chain, Nsec3Chain, NsecChain
from sigchain.core.sign.keyset import KeyPlan, plan_keys
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.records import Key, RRsetRec, from_rdataset, key_of, key_wire
from sigchain.core.zone.shape import DNSSEC_GENERATED, LABEL_KEYS, NodeKind, ZoneShape, shape
from sigchain.errors import InputError
from sigchain.findings import Finding
from sigchain.model.keys import KeyPair


@dataclass(frozen=True)
class SignOptions:
    window: SigWindow
    nsec3: nsec3hash.Nsec3Params | None = None
    cds: bool = False
    deterministic: bool = False
    serial: str = "keep"  # keep | increment | unixtime
    force: bool = False
    cds_delete: bool = False  # the key policy goes insecure: RFC 8078 delete form
    cds_digests: tuple[int, ...] = (2,)  # the key policy's cds-digest-types
    cdnskey: bool = True  # and its cdnskey


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
    # 1. The unsigned data in canonical order, with the apex records the signer sets.
    data, apex_in, napex = canonical_data(rrsets, origin, okey)
    set_apex(apex_in, origin, keys, plan, opts, now, warnings)
    soa_rds = apex_in[RdataType.SOA]
    denial_ttl = min(soa_rds[0].minimum, soa_rds.ttl)  # type: ignore[attr-defined]  # RFC 9077
    data[:napex] = sorted(from_rdataset(origin, rds) for rds in apex_in.values())
    # 2. The types at each name and the zone shape.
    types_at, zshape = data_shape(okey, data)
    # 3. The denial chain's order. The records themselves are built by the workers.
    bitmap = Bitmaps(zshape.kinds, types_at, opts.nsec3 is not None)
    chain: Chain = (
        NsecChain(zshape, data, bitmap) if opts.nsec3 is None
        else Nsec3Chain(zshape, types_at, opts.nsec3, okey, bitmap)
    )
    # 4. Batches: stretches of the canonical order, made as the signing pool takes them.
    ctx = signing_context(plan, okey, origin, opts, denial_ttl)
    ksk_signs = all(any(k.is_sep for k in ks) for ks in plan.ksk_signers.values())
    cut = functools.partial(batching.cut, data, chain, zshape.kinds)
    return Prepared(origin, cut, len(data) + len(chain.items), ctx, warnings, ksk_signs, plan.published)


def canonical_data(
    rrsets: Iterable[RRsetRec], origin: dns.name.Name, okey: Key
) -> tuple[list[RRsetRec], dict[int, dns.rdataset.Rdataset], int]:
    """The RRsets in canonical order without what a signer makes, the apex ones as rdatasets
    by type, and how many RRsets the apex has; refuses names outside the zone."""
    olen = len(okey)
    data = sorted((r for r in rrsets if r.rdtype not in DNSSEC_GENERATED), key=by_owner_type)
    apex_in: dict[int, dns.rdataset.Rdataset] = {}
    napex = 0
    for r in data:
        if r.key != okey:
            break
        napex += 1
        apex_in[r.rdtype] = rdataset(
            r.rdtype, r.ttl, [dns.rdata.from_text(dns.rdataclass.IN, r.rdtype, t) for t in r.texts]
        )
    # Sorted, so names outside the zone are at either end of the body.
    if len(data) > napex and (data[napex].key[:olen] != okey or data[-1].key[:olen] != okey):
        r = next(r for r in data[napex:] if r.key[:olen] != okey)
        raise InputError(f"{r.owner} is outside the zone {origin}")
    return data, apex_in, napex


def data_shape(okey: Key, data: list[RRsetRec]) -> tuple[dict[Key, tuple[int, ...]], ZoneShape]:
    """The types at each name of `data` (in canonical order) and the zone's shape; refuses
    a DS without NS."""
    types_at = _types_at(data)
    zshape = shape(okey, types_at, ops=LABEL_KEYS)
    _check_ds(data, types_at, zshape)
    return types_at, zshape


def _types_at(data: list[RRsetRec]) -> dict[Key, tuple[int, ...]]:
    """The types at each name of `data` (in canonical order)."""
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
    return types_at


def _check_ds(data: list[RRsetRec], types_at: dict[Key, tuple[int, ...]], zshape: ZoneShape) -> None:
    kinds = zshape.kinds
    for k, ts in types_at.items():
        if RdataType.DS in ts and kinds[k] is NodeKind.AUTH:
            owner = next(r.owner for r in data if r.key == k)
            raise InputError(f"{owner}: DS record without NS (a DS belongs at a delegation)")


def signing_context(
    plan: KeyPlan, okey: Key, origin: dns.name.Name, opts: SignOptions, denial_ttl: int
) -> SigningContext:
    """The signing keys (ZSKs first) with who signs what (RFC 4035 §2.2), for the workers."""
    signing = [k for ks in plan.zsk_signers.values() for k in ks]
    signing += [k for ks in plan.ksk_signers.values() for k in ks if k not in signing]
    return SigningContext(
        key_wire(okey), origin.to_text(), tuple(signing),
        tuple(i for i, k in enumerate(signing) if any(k in ks for ks in plan.zsk_signers.values())),
        tuple(i for i, k in enumerate(signing) if any(k in ks for ks in plan.ksk_signers.values())),
        opts.window, opts.deterministic, denial_ttl, opts.nsec3,
    )


def resign_at(earliest_expiration: int, window: SigWindow) -> int:
    """When the zone must next be re-signed: its earliest signature expiration minus a quarter
    of the validity period, which is dnssec-signzone's default cycle interval (`-i`: a
    signature expiring within validity/4 counts as "expiring soon" and is replaced)."""
    return earliest_expiration - window.validity // 4
