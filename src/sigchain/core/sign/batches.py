"""Batches: the canonical output order cut into stretches with who signs each RRset, and
`sign_units`, the worker function that signs and renders one batch."""

from __future__ import annotations

import base64
import bisect
import functools
import heapq
import operator
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.rrsig import SigWindow, rrset_data
from sigchain.core.sign.chains import Chain
from sigchain.core.sign.render import Timestamps, denial_units
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.records import Key, RRsetRec, key_wire, type_text
from sigchain.core.zone.shape import NodeKind
from sigchain.model.keys import KeyPair

_KSK_SIGNED = frozenset({RdataType.DNSKEY, RdataType.CDS, RdataType.CDNSKEY})

by_owner_type = operator.itemgetter(0, 2)  # an RRsetRec's (key, rdtype): canonical order


def _unit_owner(u: tuple[RRsetRec, int]) -> Key:
    return u[0][0]


UNSIGNED, BY_ZSK, BY_KSK = 0, 1, 2
_NEVER = 1 << 64  # above any expiration


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


def role(kind: NodeKind | None, rdtype: int) -> int:
    """Who signs the RRset `rdtype` at a name of `kind` (RFC 4035 §2.2): nothing below a zone
    cut but DS, the KSKs the apex DNSKEY/CDS/CDNSKEY, the ZSKs the rest."""
    if kind is NodeKind.AUTH:
        return BY_ZSK
    if kind is NodeKind.APEX:
        return BY_KSK if rdtype in _KSK_SIGNED else BY_ZSK
    if kind is NodeKind.DELEGATION and rdtype == RdataType.DS:
        return BY_ZSK
    return UNSIGNED


def roles(seg: list[RRsetRec], kinds: Mapping[Key, NodeKind]) -> bytes:
    """Who signs each RRset of `seg` (`role`)."""
    return bytes([role(kinds[r[0]], r[2]) for r in seg])


def cut(data: list[RRsetRec], chain: Chain, kinds: Mapping[Key, NodeKind], size: int) -> Iterator[Batch]:
    """Stretches of the canonical order (the data RRsets merged with the denial chain) of
    about `size` units each, made as the signing pool takes them."""
    items, chain_order = chain.items, chain.order
    di = ci = 0
    nd, nc = len(data), len(items)
    while di < nd or ci < nc:
        dj = min(di + size, nd)
        cj = nc if dj == nd else bisect.bisect_left(items, by_owner_type(data[dj]), ci, nc, key=chain_order)
        if cj - ci > size:  # a long stretch of the chain between two data RRsets
            cj = ci + size
            dj = bisect.bisect_left(data, chain_order(items[cj]), di, dj, key=by_owner_type)
        seg = data[di:dj]
        yield Batch(seg, roles(seg, kinds), chain.entries(ci, cj))
        di, ci = dj, cj


def signer_for(alg: algorithms.Algorithm, key: KeyPair, deterministic: bool) -> Callable[[bytes], bytes]:
    """`algorithms.sign` for one key, with the ECDSA scheme object made once, not per call."""
    if isinstance(key.private, algorithms.TokenKey):
        return key.private.sign_dnssec
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


def sign_units(batch: Batch, ctx: SigningContext) -> tuple[str, list[int], int | None]:
    """Sign and render a batch as master-file lines; also count signatures per key and give
    the earliest signature expiration (epoch seconds; None if nothing was signed).
    Pure: a worker process needs only its arguments."""
    out: list[str] = []
    add = out.append
    counts = [0] * len(ctx.keys)
    w = ctx.window
    earliest = _NEVER
    signers = [signer_for(algorithms.get(k.algorithm), k, ctx.deterministic) for k in ctx.keys]
    # What does not change from one signature to the next, per key: algorithm, key tag, signer.
    tails = [(struct.pack("!H", k.key_tag) + ctx.signer_wire, f" {k.key_tag} {ctx.signer_text} ") for k in ctx.keys]
    zsk = [(i, ctx.keys[i].algorithm, signers[i], *tails[i]) for i in ctx.zsk]
    ksk = [(i, ctx.keys[i].algorithm, signers[i], *tails[i]) for i in ctx.ksk]
    inception = w.inception % (1 << 32)
    stamp = Timestamps()
    inc_text = stamp(inception)  # the 32-bit field's value (RFC 4034 §3.1.5)
    pack = struct.pack
    b64 = base64.b64encode
    expiration_for = w.expiration_for
    units: Iterable[tuple[RRsetRec, int]] = zip(batch.rrsets, batch.roles, strict=True)
    if batch.denial:  # a name's NSEC goes after its data
        denial = denial_units(
            batch.denial, ctx.denial_ttl, ctx.nsec3, ctx.signer_wire, ctx.signer_text, BY_ZSK
        )
        units = heapq.merge(units, denial, key=_unit_owner)
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
        expiration = expiration_for(owner_wire, rdtype)
        if expiration < earliest:
            earliest = expiration
        expiration %= 1 << 32
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
    return "".join(out), counts, (earliest if earliest != _NEVER else None)
