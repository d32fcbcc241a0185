"""One RRset signed into its RRSIG RRset (wire and text), with the keys of a `SigningContext`:
what the incremental signer calls for each RRset it re-signs."""

from __future__ import annotations

import base64
import struct

from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.rrsig import SigWindow, rrset_data
from sigchain.core.sign.batches import BY_KSK, SigningContext, _signer_for
from sigchain.core.sign.render import Timestamps
from sigchain.core.zone.records import RRsetRec, is_wild, key_wire, make_rrset, type_text


class RRsetSigner:
    """Signs RRsets one at a time: each key's signing function made once."""

    def __init__(self, ctx: SigningContext) -> None:
        self.ctx = ctx
        keys = ctx.keys
        sign = [_signer_for(algorithms.get(k.algorithm), k, ctx.deterministic) for k in keys]
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
