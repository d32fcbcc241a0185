"""A big zone file read and verified in parts: one worker process per part (edge/zonesplit)
reads it, sends this process a summary of its names, then checks its own signatures in the
context the whole zone gives (core/verify/parts) while this process checks the chains; the
RRsets come back only when asked for (the server indexes them), a part at a time and in
chunks that the part lets go of as it sends them (a reload's peak memory, see `_send_served`)."""

from __future__ import annotations

import multiprocessing
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
from sigchain.core.verify.report import VerifyReport
from sigchain.core.zone.wire import WireRRset
from sigchain.edge import zonesplit
from sigchain.edge.fastparse import check_apex, ignored_warnings
from sigchain.edge.zonefile import WireZone


def _worker(conn: Connection, path: str, origin: str, cut: zonesplit.Cut, refuse: bool) -> None:
    """One part's process: read, summarise, then answer "check" and "rrsets" until told to
    stop (None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    part = zonesplit.read_part(path, origin, cut, refuse)
    if part is None:
        conn.send(None)
        return
    conn.send((part.ignored, part.has_soa, part.has_ns, vparts.summary(part.rrsets)))
    name = dns.name.from_text(origin)
    while (msg := conn.recv()) is not None:
        kind, arg = msg
        if kind == "check":
            conn.send(vparts.check_part(part.rrsets, arg, name))
        elif kind == "served":
            _send_served(conn, part.rrsets)
        else:
            conn.send(part.rrsets)


# RRsets per message of a part's records in `served_form`: small enough that neither side
# holds more than a few MB of pickled records at a time, big enough to cost nothing.
SERVED_CHUNK = 20_000


def _send_served(conn: Connection, rrsets: list[WireRRset]) -> None:
    """Send `rrsets` in `served_form`, in chunks, then None; each chunk's RRsets are let go
    of as it is sent (this part shrinks while the server's index grows)."""
    rrsets.reverse()  # taken from the end: each chunk is freed without moving the rest
    while rrsets:
        chunk = rrsets[-SERVED_CHUNK:]
        del rrsets[-SERVED_CHUNK:]
        chunk.reverse()  # back in the file's order
        conn.send(served_form(chunk))
        del chunk
    conn.send(None)


class Parts:
    """The worker processes of one file's parts (started at once: they read while the
    caller goes on); `close` ends them."""

    def __init__(self, path: str, origin: dns.name.Name, cuts: Sequence[zonesplit.Cut],
                 refuse_cname_clash: bool) -> None:
        ctx = multiprocessing.get_context("forkserver")
        self.path, self.origin = path, origin
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for cut in cuts:
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(theirs, path, origin.to_text(), cut, refuse_cname_clash),
                            daemon=True)
            p.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(p)

    def summaries(self) -> list[tuple[list[str], bool, bool, vparts.Summary]] | None:
        """Each part's (ignored lines, has SOA, has NS, summary); None when some part must be
        read with the whole file (see `zonesplit.read_part`) or an owner is in two parts."""
        got = [c.recv() for c in self.conns]
        if any(g is None for g in got):
            return None
        seen: set[tuple[bytes, ...]] = set()
        for g in got:
            keys = {k for k, _, _ in g[3].names}
            if not seen.isdisjoint(keys):
                return None
            seen |= keys
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
        c.close()
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()

    def close(self) -> None:
        for i in range(len(self.conns)):
            self._end(i)


def _verify(parts: Parts, summaries: list[vparts.Summary], now: int, ignore_ksk: bool,
            only_signed: bool) -> VerifyReport | None:
    """The report from the parts' summaries and their own signature checks (the whole-zone
    structures made here are gone when it returns)."""
    z = vparts.merge(summaries)
    signed = bool(z.signing_algs) or any(RdataType.DNSKEY in rs for rs in z.data.values())
    if not signed and only_signed:
        return None
    report = VerifyReport(parts.origin)
    ctx, zshape, types_at, soa = verifier.begin(report, z, now, ignore_ksk, DEFAULT_POLICY)
    if ctx is not None:
        parts.ask("check", ctx)
        tail = VerifyReport(parts.origin)
        verifier.finish(tail, z, zshape, types_at, soa)  # while the parts check signatures
        vparts.add_checked(report, parts.answers())
        report.findings += tail.findings
        report.denial, report.nsec3 = tail.denial, tail.nsec3
    return report


def read_and_verify(parts: Parts, now: int, ignore_ksk: bool, *, require_ns: bool,
                    records: bool, only_signed: bool, served: bool = False,
                    sink: Callable[[list[Any]], object] | None = None,
                    ) -> tuple[WireZone, VerifyReport | None] | None:
    """The zone (its RRsets when `records`: in `served_form` when `served`, handed to `sink`
    chunk by chunk when given, else as `zone.served`) and its report (None: `only_signed`
    and the zone is not signed); None when the file must be read whole instead."""
    got = parts.summaries()
    if got is None:
        return None
    path, origin = parts.path, parts.origin
    check_apex(any(g[1] for g in got), not require_ns or any(g[2] for g in got), origin, path)
    zone = WireZone(origin, [], path, ignored_warnings(path, [i for g in got for i in g[0]]))
    report = _verify(parts, [g[3] for g in got], now, ignore_ksk, only_signed)
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
