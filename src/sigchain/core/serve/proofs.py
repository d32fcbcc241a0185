"""The DNSSEC denial proofs for a lookup outcome (RFC 4035 §3.1.3, RFC 5155 §7.2): the
NSEC/NSEC3 records, and the DS or its absence at a delegation, added to the sections by a
step of their own after each lookup step (as Knot's nsec_proofs.c), only when DO is set
and the zone is signed."""

from __future__ import annotations

from dns.rdatatype import RdataType

from sigchain.core.serve.index import Node, ZoneIndex, parent
from sigchain.core.serve.outcome import Outcome, Sections


def prove(z: ZoneIndex, s: Sections, o: Outcome) -> None:
    """Add to `s` the records that prove what the lookup step `o` found in zone `z`."""
    kind = o.kind
    if kind == "hit" and o.wildcard is None:
        return  # the common case: data of the name itself needs no proof
    if kind == "nodata":
        if o.wildcard is not None and o.ce is not None:
            _wildcard_nodata(z, s, o.key, o.ce, o.wildcard)
        else:
            _nodata(z, s, o.key, o.existing)
    elif kind == "nxdomain" and o.ce is not None:
        _nxdomain(z, s, o.key, o.ce)
    elif kind == "delegation" and o.cut is not None:
        _delegation(z, s, o.cut)
    elif o.wildcard is not None and o.ce is not None:  # an answer a wildcard synthesised
        _wildcard_answer(z, s, o.key, o.ce)


def _signed(s: Sections, node: Node, rdtype: int) -> None:
    s.add("authority", node.rrsets[rdtype])
    s.add("authority", node.sigs.get(rdtype))


def _nsec(z: ZoneIndex, s: Sections, owner: bytes) -> None:
    _signed(s, z.by_key[owner], RdataType.NSEC)


def _nsec3(z: ZoneIndex, s: Sections, digest: bytes) -> None:
    _signed(s, z.nsec3_nodes[digest], RdataType.NSEC3)


def _nsec3_closest_encloser(z: ZoneIndex, s: Sections, key: bytes) -> bytes:
    """Closest (provable) encloser proof: CE match + next closer cover (RFC 5155 §7.2.1)."""
    ce_hash, next_closer = z.closest_provable_encloser(key)
    _nsec3(z, s, ce_hash)
    _nsec3(z, s, z.nsec3_cover(next_closer))
    return parent(next_closer)


def _nsec3_match_or_encloser(z: ZoneIndex, s: Sections, key: bytes) -> None:
    """The NSEC3 matching `key`, else (opt-out, RFC 5155 §7.2.4, §7.2.7) the closest
    provable encloser proof."""
    h = z.nsec3_match(key)
    if h is not None:
        _nsec3(z, s, h)
    else:
        _nsec3_closest_encloser(z, s, key)


def _nodata(z: ZoneIndex, s: Sections, key: bytes, existing: bool) -> None:
    """NODATA: NSEC at the name (RFC 4035 §3.1.3.1) — or covering it for an ENT — or the
    matching NSEC3 (RFC 5155 §7.2.3), else the opt-out proof (§7.2.4)."""
    if z.denial == "nsec":
        node = z.by_key.get(key)
        if existing and node is not None and RdataType.NSEC in node.rrsets:
            _nsec(z, s, key)
        else:
            _nsec(z, s, z.covering_nsec(key))
    else:
        _nsec3_match_or_encloser(z, s, key)


def _nxdomain(z: ZoneIndex, s: Sections, key: bytes, ce: bytes) -> None:
    """NXDOMAIN: name and wildcard denied (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2)."""
    if z.denial == "nsec":
        _nsec(z, s, z.covering_nsec(key))
        _nsec(z, s, z.covering_nsec(b"\x01*" + ce))
    else:
        ce = _nsec3_closest_encloser(z, s, key)
        _nsec3(z, s, z.nsec3_cover(b"\x01*" + ce))


def _wildcard_answer(z: ZoneIndex, s: Sections, key: bytes, ce: bytes) -> None:
    """A wildcard answer proves that `key` itself does not exist: the NSEC covering it
    (RFC 4035 §3.1.3.3), the NSEC3 covering the next closer name (RFC 5155 §7.2.6)."""
    if z.denial == "nsec":
        _nsec(z, s, z.covering_nsec(key))
    else:
        next_closer = key
        while parent(next_closer) != ce:
            next_closer = parent(next_closer)
        _nsec3(z, s, z.nsec3_cover(next_closer))


def _wildcard_nodata(z: ZoneIndex, s: Sections, key: bytes, ce: bytes, wild: bytes) -> None:
    """Wildcard NODATA (RFC 4035 §3.1.3.4, RFC 5155 §7.2.5)."""
    if z.denial == "nsec":
        _nsec(z, s, z.covering_nsec(key))
        # the wildcard's own NSEC; an empty one has none: the NSEC whose next name is below it
        _nsec(z, s, wild if wild in z.by_key else z.covering_nsec(wild))
    else:
        _nsec3_closest_encloser(z, s, key)
        h = z.nsec3_match(wild)
        if h is not None:
            _nsec3(z, s, h)


def _delegation(z: ZoneIndex, s: Sections, cut: bytes) -> None:
    """At a referral: the DS RRset, or proof that there is none (RFC 4035 §3.1.4; with
    opt-out, the closest provable encloser, RFC 5155 §7.2.7)."""
    node = z.by_key[cut]
    if RdataType.DS in node.rrsets:
        _signed(s, node, RdataType.DS)
    elif z.denial == "nsec":
        _nsec(z, s, cut)
    else:
        _nsec3_match_or_encloser(z, s, cut)
