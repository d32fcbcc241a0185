"""Whole-zone verification over parts of a zone (pure): each part's signatures are checked
where the part is (`check_part`), from a context the whole zone's names give (`merge` of
each part's `summary`, then `verifier.begin`); the chains are checked on the merged names
(`verifier.finish`). The findings are those `verifier.verify_records` gives, in its order."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import NamedTuple

from dns.rdatatype import RdataType

from sigchain.core.verify.known import KnownChecker
from sigchain.core.verify.report import VerifyReport
from sigchain.core.verify.verifier import (
    Indexed,
    SigContext,
    check_signatures,
    index_zone,
    serial_checker,
)
from sigchain.core.zone.records import Key
from sigchain.core.zone.wire import WireRRset
from sigchain.findings import Finding

# The RRsets the whole-zone checks read whole (chains, apex); of the others only the types.
_KEPT = frozenset({RdataType.NSEC, RdataType.NSEC3, RdataType.NSEC3PARAM, RdataType.SOA,
                   RdataType.DNSKEY})


class Summary(NamedTuple):
    """A part's names as the whole-zone checks need them: (key, owner text, types other than
    RRSIG), the RRsets they read whole, and the algorithms of the part's RRSIGs."""

    names: list[tuple[Key, str, tuple[int, ...]]]
    kept: list[WireRRset]
    signing_algs: set[int]


def summary(rrsets: Sequence[WireRRset]) -> Summary:
    names: dict[Key, tuple[str, list[int]]] = {}
    algs: set[int] = set()
    kept = []
    for r in rrsets:
        entry = names.get(r.key)
        if entry is None:
            entry = names[r.key] = (r.owner, [])
        if r.rdtype == RdataType.RRSIG:
            algs.update(w[2] for w in r.wires)
            continue
        entry[1].append(r.rdtype)
        if r.rdtype in _KEPT:
            kept.append(r)
    return Summary([(k, o, tuple(ts)) for k, (o, ts) in names.items()], kept, algs)


def merge(summaries: Sequence[Summary]) -> Indexed:
    """The whole zone's names, in order, as `verifier.index_zone` gives them, without the RRSIGs
    (placeholders stand for the RRsets no whole-zone check reads)."""
    z = Indexed()
    kept = {(r.key, r.rdtype): r for s in summaries for r in s.kept}
    shared: dict[tuple[int, ...], dict[int, None]] = {}  # names with no kept RRset share one
    for s in summaries:
        z.signing_algs |= s.signing_algs
        for key, owner, types in s.names:
            z.owners[key] = owner
            if _KEPT.isdisjoint(types):
                node = shared.get(types)
                if node is None:
                    node = shared[types] = dict.fromkeys(types)
                z.data[key] = node  # type: ignore[assignment]
            else:
                z.data[key] = {t: kept.get((key, t)) for t in types}  # type: ignore[misc]
    return z


class Checked(NamedTuple):
    """A part's signatures checked: its findings, where each name's findings start, the
    report's counts, and the digests of the signatures verified (core/verify/known)."""

    findings: list[Finding]
    marks: list[tuple[Key, int]]
    counts: tuple[int, int, int, int, int]
    verified: bytes


def check_part(rrsets: Sequence[WireRRset] | Indexed, ctx: SigContext, origin: object) -> Checked:
    """The signatures of a part's RRsets, or of its `index_zone` (made while the whole zone's
    context was awaited), in a worker, serially; those in `ctx.known` without their crypto."""
    rep = VerifyReport(origin)  # type: ignore[arg-type]
    marks: list[tuple[Key, int]] = []
    z = rrsets if isinstance(rrsets, Indexed) else index_zone(rrsets)
    kc = KnownChecker(serial_checker, ctx.known, ctx.learn)
    check_signatures(rep, z, ctx, None, kc, marks=marks)
    counts = (rep.rrsets_checked, rep.signatures_checked, rep.signatures_verified,
              rep.signatures_valid, kc.skipped)
    return Checked(rep.findings, _found_at(marks, len(rep.findings)), counts, kc.packed)


def _found_at(marks: list[tuple[Key, int]], total: int) -> list[tuple[Key, int]]:
    """The marks of the names that have findings: a mark per name of the part was most of
    what a part sent back (`add_checked` groups the findings by the marks kept)."""
    ends = [i for _, i in marks[1:]] + [total]
    return [m for m, end in zip(marks, ends, strict=True) if end > m[1]]


def add_checked(rep: VerifyReport, parts: Sequence[Checked]) -> None:
    """The parts' findings into `rep` in canonical name order (as one pass over the whole
    zone makes them), and their counts."""
    def groups(c: Checked) -> list[tuple[Key, list[Finding]]]:
        if not c.marks:  # (a part with no findings)
            return []
        ends = [i for _, i in c.marks[1:]] + [len(c.findings)]
        return [(name, c.findings[i:end]) for (name, i), end in zip(c.marks, ends, strict=True)]

    for _name, found in heapq.merge(*(groups(c) for c in parts), key=lambda g: g[0]):
        rep.findings.extend(found)
    for c in parts:
        rep.rrsets_checked += c.counts[0]
        rep.signatures_checked += c.counts[1]
        rep.signatures_verified += c.counts[2]
        rep.signatures_valid += c.counts[3]
        rep.signatures_known += c.counts[4]
    rep.verified_digests += b"".join(c.verified for c in parts)
