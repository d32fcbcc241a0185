"""The DNSSEC denial proofs for a lookup outcome (RFC 4035 §3.1.3, RFC 5155 §7.2): the
NSEC/NSEC3 records, and the DS or its absence at a delegation, added to the sections by a
step of their own after each lookup step (as Knot's nsec_proofs.c), only when DO is set
and the zone is signed."""

from __future__ import annotations

from dns.rdatatype import RdataType

from sigchain.core.serve.index import Node, ZoneIndex, parent
from sigchain.core.serve.outcome import Kind, Outcome, Sections


def prove(zone: ZoneIndex, s: Sections, o: Outcome) -> None:
    """Add to `s` the records that prove what the lookup step `o` found."""
    p = _Proofs(zone, s)
    if o.kind is Kind.NODATA:
        if o.wildcard is not None and o.ce is not None:
            p.wildcard_nodata(o.key, o.ce, o.wildcard)
        else:
            p.nodata(o.key, o.existing)
    elif o.kind is Kind.NXDOMAIN and o.ce is not None:
        p.nxdomain(o.key, o.ce)
    elif o.kind is Kind.DELEGATION and o.cut is not None:
        p.delegation(o.cut)
    elif o.wildcard is not None and o.ce is not None:  # an answer a wildcard synthesised
        p.wildcard_answer(o.key, o.ce)


class _Proofs:
    """Proof records of one zone added to one lookup's authority section."""

    def __init__(self, zone: ZoneIndex, s: Sections):
        self.z = zone
        self.s = s

    def _signed(self, node: Node, rdtype: int) -> None:
        self.s.add("authority", node.rrsets[rdtype])
        self.s.add("authority", node.sigs.get(rdtype))

    def _nsec(self, owner: bytes) -> None:
        self._signed(self.z.by_key[owner], RdataType.NSEC)

    def _nsec3(self, digest: bytes) -> None:
        self._signed(self.z.nsec3_nodes[digest], RdataType.NSEC3)

    def _nsec3_closest_encloser(self, key: bytes) -> bytes:
        """Closest (provable) encloser proof: CE match + next closer cover (RFC 5155 §7.2.1)."""
        ce_hash, next_closer = self.z.closest_provable_encloser(key)
        self._nsec3(ce_hash)
        self._nsec3(self.z.nsec3_cover(next_closer))
        return parent(next_closer)

    def _nsec3_match_or_encloser(self, key: bytes) -> None:
        """The NSEC3 matching `key`, else (opt-out, RFC 5155 §7.2.4, §7.2.7) the closest
        provable encloser proof."""
        h = self.z.nsec3_match(key)
        if h is not None:
            self._nsec3(h)
        else:
            self._nsec3_closest_encloser(key)

    def nodata(self, key: bytes, existing: bool) -> None:
        """NODATA: NSEC at the name (RFC 4035 §3.1.3.1) — or covering it for an ENT —
        or the matching NSEC3 (RFC 5155 §7.2.3), else the opt-out proof (§7.2.4)."""
        if self.z.denial == "nsec":
            node = self.z.by_key.get(key)
            if existing and node is not None and RdataType.NSEC in node.rrsets:
                self._nsec(key)
            else:
                self._nsec(self.z.covering_nsec(key))
        else:
            self._nsec3_match_or_encloser(key)

    def nxdomain(self, key: bytes, ce: bytes) -> None:
        """NXDOMAIN: name and wildcard denied (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2)."""
        if self.z.denial == "nsec":
            self._nsec(self.z.covering_nsec(key))
            self._nsec(self.z.covering_nsec(b"\x01*" + ce))
        else:
            ce = self._nsec3_closest_encloser(key)
            self._nsec3(self.z.nsec3_cover(b"\x01*" + ce))

    def wildcard_answer(self, key: bytes, ce: bytes) -> None:
        """A wildcard answer proves that `key` itself does not exist: the NSEC covering it
        (RFC 4035 §3.1.3.3), the NSEC3 covering the next closer name (RFC 5155 §7.2.6)."""
        if self.z.denial == "nsec":
            self._nsec(self.z.covering_nsec(key))
        else:
            next_closer = key
            while parent(next_closer) != ce:
                next_closer = parent(next_closer)
            self._nsec3(self.z.nsec3_cover(next_closer))

    def wildcard_nodata(self, key: bytes, ce: bytes, wild: bytes) -> None:
        """Wildcard NODATA (RFC 4035 §3.1.3.4, RFC 5155 §7.2.5)."""
        if self.z.denial == "nsec":
            self._nsec(self.z.covering_nsec(key))
            self._nsec(wild)
        else:
            self._nsec3_closest_encloser(key)
            h = self.z.nsec3_match(wild)
            if h is not None:
                self._nsec3(h)

    def delegation(self, cut: bytes) -> None:
        """At a referral: the DS RRset, or proof that there is none (RFC 4035 §3.1.4; with
        opt-out, the closest provable encloser, RFC 5155 §7.2.7)."""
        node = self.z.by_key[cut]
        if RdataType.DS in node.rrsets:
            self._signed(node, RdataType.DS)
        elif self.z.denial == "nsec":
            self._nsec(cut)
        else:
            self._nsec3_match_or_encloser(cut)
