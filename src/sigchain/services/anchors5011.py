"""Managed trust anchors for a resolver: RFC 5011 trust points and RFC 7646 negative trust
anchors (the pure machines in core/validate/rfc5011.py and nta.py), kept in a state file and
refreshed over the network through a fetch function the caller gives.

The state file is JSON, one record per line so that a damaged one is reported by line (exit 2);
it is rewritten atomically (temp file, fsync, rename) after every change, and a file that cannot
be written is an I/O failure (exit 3). The configuration decides which zones are trust points;
for a zone already in the file, the file's keys win over the configured ones (as BIND's
managed-keys database and Unbound's auto-trust-anchor-file do after the first start).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.validate import rfc5011
from sigchain.core.validate.anchors import Server
from sigchain.core.validate.nta import RECHECK, NegativeAnchor, NegativeAnchors
from sigchain.core.validate.rfc5011 import TIMERS, Event, KeyState, Timers, TrackedKey, TrustPoint
from sigchain.core.validate.verdict import Status
from sigchain.edge import transport
from sigchain.edge.zonefile import write_atomic
from sigchain.errors import InputError, OperationalError, SigchainError

FORMAT = "sigchain-managed-anchors"
VERSION = 1

# fetch(zone) → (the zone's DNSKEY RRset, its RRSIG RRset); raise or return (None, None) on failure.
Fetch = Callable[[dns.name.Name], tuple[dns.rrset.RRset | None, dns.rrset.RRset | None]]
# check(name) → the status `name` validates to when no NTA applies (an NTA re-check).
Check = Callable[[dns.name.Name], Status]


def _no_log(line: str) -> None:
    pass


class ManagedAnchors:
    """The trust anchors a resolver validates with, maintained by RFC 5011 across restarts."""

    def __init__(self, path: str, configured: Sequence[dns.rrset.RRset], now: int, *,
                 timers: Timers = TIMERS, policy: DnssecPolicy = DEFAULT_POLICY,
                 log: Callable[[str], None] = _no_log, writer: bool = True):
        """`writer`: the process that keeps the state file (not a worker process, which only
        reads it: a rewrite of what it read could undo what the writer saved meanwhile)."""
        self.path = path
        self.timers = timers
        self.policy = policy
        self.log = log
        stored, self.negative, self.ended = (read_state(path) if os.path.exists(path)
                                             else ({}, NegativeAnchors(), {}))
        fresh = rfc5011.from_anchors(configured, now)
        self.points: dict[dns.name.Name, TrustPoint] = {z: stored.get(z, tp) for z, tp in fresh.items()}
        if writer:
            for zone in sorted(set(stored) - set(fresh)):
                log(f"trust anchor {zone}: no longer configured; dropped from {path}")
            self._save()

    def reread(self) -> None:
        """Take the trust points' state from the file again (another process refreshed them)."""
        stored, self.negative, self.ended = read_state(self.path)
        self.points = {z: stored.get(z, tp) for z, tp in self.points.items()}

    # -- what the resolver asks -------------------------------------------------------------

    def trusted(self, now: int) -> list[dns.rrset.RRset]:
        """The anchors to validate with (DNSKEY RRsets, and DS until first primed). Trust
        changes only on a refresh, never by time alone (RFC 5011 §2.4.1); `now` is taken so
        callers need not know that."""
        del now
        return [r for tp in self.points.values() for r in rfc5011.trusted(tp)]

    @property
    def next_refresh_at(self) -> int:
        """When `refresh` next has work (0 or a time already passed: now)."""
        return min((tp.next_refresh or 0 for tp in self.points.values()), default=0)

    def refresh(self, fetch: Fetch, now: int, force: bool = False) -> list[Event]:
        """Refresh every trust point that is due (every one with `force`), log and save."""
        events: list[Event] = []
        due = [tp for tp in self.points.values() if force or rfc5011.next_refresh(tp, now) <= now]
        for tp in due:
            failure = ""
            try:
                dnskey, sigs = fetch(tp.zone)
            except (SigchainError, OSError, EOFError, ValueError, dns.exception.DNSException) as exc:
                dnskey, sigs, failure = None, None, str(exc) or type(exc).__name__
            tp, seen = rfc5011.observe(tp, dnskey, sigs, now, self.timers, self.policy, failure)
            self.points[tp.zone] = tp
            events += seen
        for event in events:
            self.log(str(event))
        if due:
            self._save()
        return events

    def keys(self) -> list[tuple[dns.name.Name, TrackedKey]]:
        """Every tracked key, by trust point: for status output."""
        return [(zone, k) for zone, tp in sorted(self.points.items()) for k in tp.keys]

    # -- negative trust anchors -------------------------------------------------------------

    def keep_negative(self, ntas: NegativeAnchors, ended: Mapping[dns.name.Name, int]) -> None:
        """Keep the resolver's NTAs (its AnchorKeeper's, which adds, re-checks and expires
        them) across restarts, and the configured ones that ended (`ended`: name → the
        lifetime it was configured with): a restart must not renew an NTA (RFC 7646 §2: it
        must end)."""
        if ntas != self.negative or ended != self.ended:
            self.negative, self.ended = ntas, dict(ended)
            self._save()

    # -- the state file ---------------------------------------------------------------------

    def _save(self) -> None:
        write_atomic(self.path, _lines(self.points, self.negative, self.ended))


def _lines(points: dict[dns.name.Name, TrustPoint], ntas: NegativeAnchors,
           ended: Mapping[dns.name.Name, int]) -> Iterator[str]:
    yield json.dumps({"format": FORMAT, "version": VERSION}) + "\n"
    for zone, tp in sorted(points.items()):
        yield json.dumps({
            "trust_point": zone.to_text(), "ds": [d.to_text() for d in tp.ds],
            "last_attempt": tp.last_attempt, "last_success": tp.last_success,
            "next_refresh": tp.next_refresh, "query_interval": tp.query_interval,
            "retry_interval": tp.retry_interval, "failures": tp.failures}) + "\n"
        for k in tp.keys:
            yield json.dumps({"key": zone.to_text(), "tag": k.tag, "state": k.state.value,
                              "since": k.since, "holddown": k.holddown,
                              "dnskey": k.dnskey.to_text(chunksize=0)}) + "\n"
    for e in ntas.entries:
        yield json.dumps({"nta": e.name.to_text(), "added": e.added, "expiry": e.expiry,
                          "next_check": e.next_check, "recheck": e.recheck}) + "\n"
    for name, lifetime in sorted(ended.items()):  # an "nta" long expired to a reader before
        yield json.dumps({"nta": name.to_text(), "added": 0, "expiry": 0, "next_check": None,
                          "ended": lifetime}) + "\n"


class _Record:
    """One line of the state file, with typed access that names the line on error."""

    def __init__(self, data: dict[str, Any], path: str, line: int):
        self.data, self.path, self.line = data, path, line

    def fail(self, message: str) -> InputError:
        return InputError(f"damaged managed-anchors state: {message}", file=self.path, line=self.line)

    def int(self, name: str, optional: bool = False) -> Any:
        value = self.data.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(f"{name!r} must be a non-negative integer, not {value!r}")
        return value

    def text(self, name: str) -> str:
        value = self.data.get(name)
        if not isinstance(value, str):
            raise self.fail(f"{name!r} must be a string, not {value!r}")
        return value

    def name(self, field: str) -> dns.name.Name:
        try:
            return dns.name.from_text(self.text(field))
        except dns.exception.DNSException as exc:
            raise self.fail(f"bad name in {field!r}: {exc}") from None

    def rdata(self, rdtype: int, text: str, field: str) -> Any:
        try:
            return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
        except (dns.exception.DNSException, ValueError) as exc:
            raise self.fail(f"bad {dns.rdatatype.to_text(rdtype)} in {field!r}: {exc}") from None


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise InputError("damaged managed-anchors state: not UTF-8 text", file=path) from None
    except OSError as exc:
        raise OperationalError(f"cannot read: {exc.strerror or exc}", file=path) from None


def read_state(path: str) -> tuple[dict[dns.name.Name, TrustPoint], NegativeAnchors,
                                   dict[dns.name.Name, int]]:
    """The trust points, NTAs and configured NTAs that ended (with their lifetime) in a state
    file; InputError naming the line if damaged."""
    points: dict[dns.name.Name, TrustPoint] = {}
    keys: dict[dns.name.Name, list[TrackedKey]] = {}
    ntas: list[NegativeAnchor] = []
    ended: dict[dns.name.Name, int] = {}
    header = False
    for number, raw in enumerate(_read_text(path).splitlines(), 1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"damaged managed-anchors state: not JSON ({exc.msg})", file=path,
                             line=number) from None
        rec = _Record(data if isinstance(data, dict) else {}, path, number)
        if not isinstance(data, dict):
            raise rec.fail("expected a JSON object")
        if not header:
            if data.get("format") != FORMAT or data.get("version") != VERSION:
                raise rec.fail(f"expected the header {{\"format\": \"{FORMAT}\", \"version\": {VERSION}}}")
            header = True
        elif "trust_point" in data:
            tp = _trust_point(rec)
            if tp.zone in points:
                raise rec.fail(f"trust point {tp.zone} listed twice")
            points[tp.zone] = tp
        elif "key" in data:
            zone = rec.name("key")
            if zone not in points:
                raise rec.fail(f"key for {zone} before its trust_point line")
            keys.setdefault(zone, []).append(_key(rec))
        elif "nta" in data and "ended" in data:  # a configured NTA that ended, its lifetime
            ended[rec.name("nta")] = rec.int("ended")
        elif "nta" in data:
            recheck = rec.int("recheck", optional=True)  # absent in files written before it
            ntas.append(NegativeAnchor(rec.name("nta"), rec.int("added"), rec.int("expiry"),
                                       rec.int("next_check", optional=True),
                                       RECHECK if recheck is None else recheck))
        else:
            raise rec.fail("expected a trust_point, key or nta record")
    if not header:
        raise InputError("damaged managed-anchors state: empty file", file=path)
    for zone, ks in keys.items():
        points[zone] = replace(points[zone], keys=tuple(ks))
    return points, NegativeAnchors(tuple(ntas)), ended


def _trust_point(rec: _Record) -> TrustPoint:
    ds = rec.data.get("ds", [])
    if not isinstance(ds, list) or not all(isinstance(d, str) for d in ds):
        raise rec.fail("'ds' must be a list of DS record texts")
    return TrustPoint(rec.name("trust_point"), (), tuple(rec.rdata(RdataType.DS, d, "ds") for d in ds),
                      rec.int("last_attempt", True), rec.int("last_success", True),
                      rec.int("next_refresh", True), rec.int("query_interval"),
                      rec.int("retry_interval"), rec.int("failures"))


def _key(rec: _Record) -> TrackedKey:
    try:
        state = KeyState(rec.text("state"))
    except ValueError:
        raise rec.fail(f"unknown key state {rec.data.get('state')!r}: expected one of "
                       + ", ".join(s.value for s in KeyState)) from None
    return TrackedKey(rec.rdata(RdataType.DNSKEY, rec.text("dnskey"), "dnskey"), state,
                      rec.int("since"), rec.int("holddown"))


def dnskey_fetcher(servers: Sequence[Server], timeout: float = transport.SERVER_TIMEOUT) -> Fetch:
    """A fetch that asks `servers` in turn for the zone's DNSKEY RRset (DO=1, CD=1: we validate
    it ourselves), over UDP with TCP on truncation, from the server asked only."""

    def fetch(zone: dns.name.Name) -> tuple[dns.rrset.RRset | None, dns.rrset.RRset | None]:
        errors = []
        for server in servers:
            query = dns.message.make_query(zone, RdataType.DNSKEY, want_dnssec=True, payload=1232)
            query.flags |= dns.flags.CD
            try:
                reply = transport.ask(server, query, timeout).message
            except (OSError, EOFError, dns.exception.DNSException) as exc:
                errors.append(f"{server}: {exc or type(exc).__name__}")
                continue
            keys = reply.get_rrset(reply.answer, zone, dns.rdataclass.IN, RdataType.DNSKEY)
            if keys is None:
                errors.append(f"{server}: no DNSKEY RRset in the answer (rcode "
                              f"{dns.rcode.to_text(reply.rcode())})")
                continue
            sigs = reply.get_rrset(reply.answer, zone, dns.rdataclass.IN, RdataType.RRSIG,
                                   RdataType.DNSKEY)
            return keys, sigs
        raise OperationalError(f"DNSKEY {zone}: " + ("; ".join(errors) or "no server to ask"))

    return fetch
