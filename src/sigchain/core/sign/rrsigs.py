"""RRSIG RRsets one at a time, for the incremental signer (who signs an RRset is
`batches.role`): one RRset signed with the keys of a `SigningContext`, a signed zone split
into data, RRSIGs and denial records, and whether a signature found there can stay (`fits`)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable

from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.rrsig import SigWindow, rrset_data
from sigchain.core.sign.batches import BY_KSK, SigningContext, signer_for
from sigchain.core.sign.render import Timestamps
from sigchain.core.zone.records import Key, RRsetRec, is_wild, key_wire, make_rrset, type_text


class RRsetSigner:
    """Signs RRsets one at a time: each key's signing function made once."""

    def __init__(self, ctx: SigningContext) -> None:
        self.ctx = ctx
        keys = ctx.keys
        sign = [signer_for(algorithms.get(k.algorithm), k, ctx.deterministic) for k in keys]
        self.zsk = [(keys[i].algorithm, keys[i].key_tag, sign[i]) for i in ctx.zsk]
        self.ksk = [(keys[i].algorithm, keys[i].key_tag, sign[i]) for i in ctx.ksk]
        self.stamp = Timestamps()

    def sign(self, r: RRsetRec, role: int, window: SigWindow) -> RRsetRec:
        """The RRSIG RRset over `r` by the KSKs (role BY_KSK) or the ZSKs, in `window`."""
        owner_wire = key_wire(r.key)
        labels = len(r.key) - (1 if is_wild(r.key) else 0)
        inception = window.inception % (1 << 32)
        expiration = window.expiration_for(owner_wire, r.rdtype) % (1 << 32)
        body = rrset_data(owner_wire, r.rdtype, r.ttl, r.wires)
        signer_wire, signer_text = self.ctx.signer_wire, self.ctx.signer_text
        times = f"{self.stamp(expiration)} {self.stamp(inception)}"
        pairs = []
        for alg, tag, sign in self.ksk if role == BY_KSK else self.zsk:
            header = struct.pack("!HBBIIIH", r.rdtype, alg, labels, r.ttl, expiration, inception,
                                 tag) + signer_wire
            sig = sign(header + body)
            text = (f"{type_text(r.rdtype)} {alg} {labels} {r.ttl} {times} {tag} {signer_text} "
                    f"{base64.b64encode(sig).decode()}")
            pairs.append((header + sig, text))
        return make_rrset(r.key, r.owner, RdataType.RRSIG, r.ttl, pairs)


def expiration_of(sigs: RRsetRec) -> int:
    """The earliest expiration (epoch seconds, as the 32-bit field says) of an RRSIG RRset."""
    return min(struct.unpack_from("!I", w, 8)[0] for w in sigs.wires)


def covered_type(sig_wire: bytes) -> int:
    return int(struct.unpack_from("!H", sig_wire)[0])


def split_signed(
    signed: Iterable[RRsetRec],
) -> tuple[list[RRsetRec], dict[Key, dict[int, RRsetRec]], dict[Key, RRsetRec]]:
    """A signed zone's RRsets as data, RRSIG RRsets by (owner, type covered), and NSEC or
    NSEC3 RRsets by owner."""
    data: list[RRsetRec] = []
    sigs: dict[Key, dict[int, RRsetRec]] = {}
    denial: dict[Key, RRsetRec] = {}
    for r in signed:
        if r.rdtype == RdataType.RRSIG:
            by_type: dict[int, list[tuple[bytes, str]]] = {}
            for w, t in zip(r.wires, r.texts, strict=True):
                by_type.setdefault(covered_type(w), []).append((w, t))
            for covered, pairs in by_type.items():
                sigs.setdefault(r.key, {})[covered] = make_rrset(r.key, r.owner, r.rdtype, r.ttl, pairs)
        elif r.rdtype in (RdataType.NSEC, RdataType.NSEC3):
            denial[r.key] = r
        else:
            data.append(r)
    return data, sigs, denial


def fits(sig: RRsetRec, ttl: int, signers: set[tuple[int, int]], now: int) -> bool:
    """An RRSIG RRset made by exactly the keys that sign now, over the RRset's TTL, valid at
    `now` (its expiration beyond the inception-to-now time it has already lived)."""
    made = set()
    for w in sig.wires:
        _, alg, _, original_ttl, expiration, inception, tag = struct.unpack_from("!HBBIIIH", w)
        if original_ttl != ttl or not inception <= now < expiration:
            return False
        made.add((alg, tag))
    return made == signers
