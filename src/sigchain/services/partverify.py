"""A big zone file read and verified in parts: one worker process per part (edge/zonesplit)
reads it, sends this process a summary of its names, then checks its own signatures in the
context the whole zone gives (core/verify/parts) while this process checks the chains; the
RRsets come back only when asked for (the server indexes them), a part at a time and in
chunks that the part lets go of as it sends them (a reload's peak memory, see `_send_served`).

`read_and_verify_alone` is the lean form a server's reload uses beside the workers answering
queries: one process at a lower priority reads the parts one after the other, verifies the
zone and ends (its memory: the names' summaries and one part); a second reads each part again
for the index, refusing a part whose bytes differ from the first reading's."""

from __future__ import annotations

import gc
import hashlib
import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import dns.name
from dns.rdatatype import RdataType

from sigchain.core.dnssec.policy import DEFAULT_POLICY
from sigchain.core.serve.fromwire import served_form
from sigchain.core.verify import parts as vparts
from sigchain.core.verify import verifier
from sigchain.core.verify.known import known_set
from sigchain.core.verify.report import VerifyReport
from sigchain.core.zone.wire import WireRRset
from sigchain.edge import forkserver, zonesplit
from sigchain.edge.fastparse import check_apex, load_warnings
from sigchain.edge.zonefile import WireZone
from sigchain.errors import InputError
from sigchain.services.reloadmem import collector_held_off


def _worker(conn: Connection, path: str, origin: str, cut: zonesplit.Cut, refuse: bool) -> None:
    """One part's process: read, summarise, then answer "check" and "rrsets" until told to
    stop (None). Its millions of objects are none of them garbage: the collector stays off
    (it walked them over and over: a third of the CPU a part spent outside the crypto)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    with collector_held_off():
        try:
            _work(conn, path, origin, cut, refuse)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            return  # the parent is gone (Ctrl-C, an error): no one to tell


def _work(conn: Connection, path: str, origin: str, cut: zonesplit.Cut, refuse: bool) -> None:
    part = zonesplit.read_part(path, origin, cut, refuse)
    if part is None:
        conn.send(None)
        return
    conn.send(((part.ignored, part.mixed), part.has_soa, part.has_ns, vparts.summary(part.rrsets)))
    name = dns.name.from_text(origin)
    # Indexed while this process would otherwise wait for the parent to merge the summaries.
    try:
        indexed: verifier.Indexed | None = verifier.index_zone(part.rrsets)
    except ValueError:
        indexed = None  # a malformed RRSIG: said when (and if) the check is asked for
    while (msg := conn.recv()) is not None:
        kind, arg = msg
        if kind == "check":
            z, indexed = indexed, None  # used once
            conn.send(vparts.check_part(z if z is not None else part.rrsets, arg, name))
            del z
            continue
        indexed = None  # it would hold the records `_send_served` lets go of
        if kind == "served":
            _send_served(conn, part.rrsets)
        else:
            conn.send(part.rrsets)


# RRsets per message of a part's records in `served_form`: small enough that neither side
# holds more than a few MB of pickled records at a time, big enough to cost nothing.
SERVED_CHUNK = 20_000


def _send_served(conn: Connection, rrsets: list[WireRRset]) -> None:
    """Send `rrsets` in `served_form`, in chunks, then None; each chunk's RRsets are let go
    of as it is sent (this part shrinks while the server's index grows)."""
    _send_chunks(conn, rrsets)
    conn.send(None)


def _send_chunks(conn: Connection, rrsets: list[WireRRset]) -> None:
    rrsets.reverse()  # taken from the end: each chunk is freed without moving the rest
    while rrsets:
        chunk = rrsets[-SERVED_CHUNK:]
        del rrsets[-SERVED_CHUNK:]
        chunk.reverse()  # back in the file's order
        conn.send(served_form(chunk))
        del chunk


class Parts:
    """The worker processes of one file's parts (started at once: they read while the
    caller goes on); `close` ends them."""

    def __init__(self, path: str, origin: dns.name.Name, cuts: Sequence[zonesplit.Cut],
                 refuse_cname_clash: bool) -> None:
        self.path, self.origin = path, origin
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for cut in cuts:
            mine, p = _one(_worker, path, origin.to_text(), cut, refuse_cname_clash)
            self.conns.append(mine)
            self.procs.append(p)

    def summaries(self) -> list[tuple[tuple[list[str], list[str]], bool, bool, vparts.Summary]] | None:
        """Each part's ((ignored lines, records of mixed TTLs), has SOA, has NS, summary); None
        when some part must be read with the whole file (see `zonesplit.read_part`) or an
        owner is in two parts."""
        got = [c.recv() for c in self.conns]
        if any(g is None for g in got) or not _disjoint([g[3] for g in got]):
            return None
        return got

    def ask(self, kind: str, arg: object = None) -> None:
        for c in self.conns:
            c.send((kind, arg))

    def answers(self) -> list[Any]:
        return [c.recv() for c in self.conns]

    def served(self, sink: Callable[[list[Any]], object]) -> None:
        """Each part's RRsets in `served_form`, chunk by chunk to `sink`, a part at a time;
        each part's process is ended once it has sent its last (its memory goes with it)."""
        for i, c in enumerate(self.conns):
            c.send(("served", None))
            while (chunk := c.recv()) is not None:
                sink(chunk)
                del chunk
            self._end(i)

    def _end(self, i: int) -> None:
        c, p = self.conns[i], self.procs[i]
        if c.closed:
            return
        try:
            c.send(None)
        except OSError:
            pass
        _end(c, p)

    def close(self) -> None:
        for i in range(len(self.conns)):
            self._end(i)


def _disjoint(summaries: Sequence[vparts.Summary]) -> bool:
    """Whether no owner is in two parts."""
    seen: set[tuple[bytes, ...]] = set()
    for s in summaries:
        keys = {k for k, _, _ in s.names}
        if not seen.isdisjoint(keys):
            return False
        seen |= keys
    return True


def _verify(origin: dns.name.Name, summaries: list[vparts.Summary], now: int, ignore_ksk: bool,
            only_signed: bool, ask: Callable[[verifier.SigContext], object],
            answers: Callable[[], list[vparts.Checked]],
            known: frozenset[bytes] = frozenset(), learn: bool = True) -> VerifyReport | None:
    """The report from the parts' summaries and their own signature checks (`ask` starts
    them, `answers` collects them); the whole-zone structures made here are gone when it
    returns."""
    z = vparts.merge(summaries)
    summaries.clear()  # what the checks need of them is in `z` (the caller may hold no other)
    signed = bool(z.signing_algs) or any(RdataType.DNSKEY in rs for rs in z.data.values())
    if not signed and only_signed:
        return None
    report = VerifyReport(origin)
    ctx, zshape, types_at, soa = verifier.begin(report, z, now, ignore_ksk, DEFAULT_POLICY, known, learn)
    if ctx is not None:
        ask(ctx)
        tail = VerifyReport(origin)
        verifier.finish(tail, z, zshape, types_at, soa)  # while the parts check signatures
        vparts.add_checked(report, answers())
        report.findings += tail.findings
        report.denial, report.nsec3 = tail.denial, tail.nsec3
    return report


def read_and_verify(parts: Parts, now: int, ignore_ksk: bool, *, require_ns: bool,
                    records: bool, only_signed: bool, served: bool = False,
                    sink: Callable[[list[Any]], object] | None = None, known: bytes = b"",
                    learn: bool = True,
                    ) -> tuple[WireZone, VerifyReport | None] | None:
    """The zone (its RRsets when `records`: in `served_form` when `served`, handed to `sink`
    chunk by chunk when given, else as `zone.served`) and its report (None: `only_signed`
    and the zone is not signed); None when the file must be read whole instead."""
    with collector_held_off():  # (the summaries' names: no garbage, see `_worker`)
        got = parts.summaries()
        if got is None:
            return None
        path, origin = parts.path, parts.origin
        check_apex(any(g[1] for g in got), not require_ns or any(g[2] for g in got), origin, path)
        zone = WireZone(origin, [], path, _warnings(path, [g[0] for g in got]))
        report = _verify(origin, [g[3] for g in got], now, ignore_ksk, only_signed,
                         lambda ctx: parts.ask("check", ctx), parts.answers, known_set(known), learn)
        del got  # the names' summaries go before the records come (less left fragmented)
    if records and served:
        if sink is None:
            zone.served = []
            sink = zone.served.extend
        parts.served(sink)
    elif records:
        parts.ask("rrsets")
        zone.rrsets = [r for rs in parts.answers() for r in rs]
    return zone, report


# ---- one process at a time (a reload beside the answering workers) ---------------------------

class _Changed(Exception):
    """A part's bytes differ from its first reading's."""


def _lower(nice: int) -> None:
    """Ctrl-C is the parent's; `nice`; and the collector off for the process's life (see
    `_worker`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()
    if nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except OSError:
            pass


def _reread(path: str, origin: str, cut: zonesplit.Cut, refuse: bool, digest: bytes) -> list[WireRRset]:
    h = hashlib.blake2b(digest_size=32)
    part = zonesplit.read_part(path, origin, cut, refuse, h)
    if part is None or h.digest() != digest:
        raise _Changed
    return part.rrsets


def _warnings(path: str, notes: list[tuple[list[str], list[str]]]) -> list[str]:
    """The whole file's `load_warnings` from its parts' (ignored lines, records of mixed TTLs)."""
    return load_warnings(path, [i for ignored, _ in notes for i in ignored],
                         [m for _, mixed in notes for m in mixed])


def _alone_verify(conn: Connection, path: str, origin: str, cuts: Sequence[zonesplit.Cut],
                  refuse: bool, now: int, ignore_ksk: bool, only_signed: bool, known: bytes,
                  nice: int) -> None:
    """Read the parts one after the other for their summaries, then again one after the
    other for their signature checks; send (the load warnings, has SOA, has NS, report, each
    part's digest), None when the file must be read whole, "changed" when it changed."""
    _lower(nice)
    name = dns.name.from_text(origin)
    got, digests = [], []
    for cut in cuts:
        h = hashlib.blake2b(digest_size=32)
        part = zonesplit.read_part(path, origin, cut, refuse, h)
        if part is None:
            conn.send(None)
            return
        got.append(((part.ignored, part.mixed), part.has_soa, part.has_ns, vparts.summary(part.rrsets)))
        digests.append(h.digest())
        del part
    notes = _warnings(path, [g[0] for g in got])
    has_soa, has_ns = any(g[1] for g in got), any(g[2] for g in got)
    summaries = [g[3] for g in got]
    del got  # the summaries' names go once merged (`_verify`)
    if not _disjoint(summaries):
        conn.send(None)
        return
    todo: list[verifier.SigContext] = []

    def answers() -> list[vparts.Checked]:
        return [vparts.check_part(_reread(path, origin, cut, refuse, d), todo[0], name)
                for cut, d in zip(cuts, digests, strict=True)]

    try:
        report = _verify(name, summaries, now, ignore_ksk, only_signed, todo.append, answers,
                         known_set(known))
    except _Changed:
        conn.send("changed")
        return
    conn.send((notes, has_soa, has_ns, report, digests))


def _alone_served(conn: Connection, path: str, origin: str, cuts: Sequence[zonesplit.Cut],
                  refuse: bool, digests: list[bytes], nice: int) -> None:
    """Each part read again and sent in `served_form` chunks, then None ("changed" instead
    when a part's bytes are not those verified)."""
    _lower(nice)
    for cut, d in zip(cuts, digests, strict=True):
        try:
            rrsets = _reread(path, origin, cut, refuse, d)
        except _Changed:
            conn.send("changed")
            return
        _send_chunks(conn, rrsets)
        del rrsets
    conn.send(None)


def _one(target: Callable[..., None], *args: object) -> tuple[Connection, Any]:
    ctx = forkserver.context()
    mine, theirs = ctx.Pipe()
    p = ctx.Process(target=target, args=(theirs, *args), daemon=True)
    p.start()
    theirs.close()
    return mine, p


def _end(conn: Connection, p: Any) -> None:
    conn.close()
    p.join(5)
    if p.is_alive():
        p.kill()
        p.join()


def _changed(path: str) -> InputError:
    return InputError(f"{path} changed while it was read: not loaded (reload again)", file=path)


def read_and_verify_alone(path: str, origin: dns.name.Name, cuts: Sequence[zonesplit.Cut], now: int,
                          ignore_ksk: bool, *, require_ns: bool, refuse_cname_clash: bool,
                          only_signed: bool, known: bytes, nice: int,
                          sink: Callable[[list[Any]], object],
                          verified: Callable[[VerifyReport | None], object] | None = None,
                          ) -> tuple[WireZone, VerifyReport | None] | None:
    """`read_and_verify` with `served` and `sink`, the parts read one at a time by one
    process at niceness `nice`, then again by another for `sink`; the crypto of signatures
    whose digest is in `known` (core/verify/known) is skipped."""
    refuse = refuse_cname_clash
    conn, p = _one(_alone_verify, path, origin.to_text(), list(cuts), refuse, now, ignore_ksk,
                   only_signed, known, nice)
    try:
        got = conn.recv()
    except EOFError:
        got = None  # the reading process failed: the whole-file reader says why
    finally:
        _end(conn, p)
    if got is None:
        return None
    if got == "changed":
        raise _changed(path)
    notes, has_soa, has_ns, report, digests = got
    check_apex(has_soa, not require_ns or has_ns, origin, path)
    zone = WireZone(origin, [], path, notes)
    if verified is not None:
        verified(report)
    conn, p = _one(_alone_served, path, origin.to_text(), list(cuts), refuse, digests, nice)
    try:
        while (chunk := conn.recv()) is not None:
            if chunk == "changed":
                raise _changed(path)
            sink(chunk)
            del chunk
    except EOFError:
        raise InputError(f"{path}: the process reading it again ended early: not loaded",
                         file=path) from None
    finally:
        _end(conn, p)
    return zone, report
