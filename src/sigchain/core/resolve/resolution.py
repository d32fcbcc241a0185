"""Gathering the evidence for one question (pure, sans-I/O): a state machine that says which
query to send next and is told what came back, in the manner of dnspython's `_Resolution`.

    resolution = Resolution(question, anchor_names, hints=root_servers)
    while (query := resolution.next_query()) is not None:
        reply = <send query.message() to query.servers, in order, until one answers>
        resolution.result(reply)                 # or resolution.result(None, "why not")
    resolution.outcome                           # Gathered(evidence, …) or Failed(reason, …)

Two modes. *Iterative*: from root hints, following referrals zone by zone (RD=0). *Server*:
every query goes to one server; when its first reply has RA set it is a recursive resolver
and is asked with RD=1 and CD=1, so that bogus data still comes back and the caller validates
it (as delv does).

With `minimise`, iterative queries show each zone's servers one label more of the name than
they need (RFC 9156, relaxed: the full question after NXDOMAIN or an error), one label at a
time for the first MINIMISE_ONE_LAB minimised queries and then in larger steps, so that no
question costs more than MAX_MINIMISE_COUNT of them (RFC 9156 §2.3: a long name would
otherwise send one query per label).

After the question (and any CNAME/DNAME chain into other zones) is answered, it gathers what
`validator.validate` needs for every zone between a trust anchor and the data: the zone's
DNSKEY RRset from its own servers and its DS RRset — or the proof there is none — from the
parent's. Zone cuts come from referrals (iterative), from RRSIG signer names and SOA owners,
and in server mode from asking each ancestor of the names for SOA.

No sockets, no clock, no randomness beyond dnspython's query ID: the caller owns all I/O.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.resolve.answers import (
    ChainLoop,
    chain_target,
    in_zone,
    merge,
    on_chain,
    signers,
    soa_owners,
)
from sigchain.core.resolve.exchange import (
    Exchange,
    Failed,
    Gathered,
    Outcome,
    Query,
    Reply,
    ResolutionLimits,
    rcode_of,
)
from sigchain.core.resolve.minimise import minimised
from sigchain.core.validate.anchors import Server, ipv4_first
from sigchain.core.validate.validator import Evidence, Question, ZoneCut
from sigchain.core.zone.sharedname import share


class _Fail(Exception):
    def __init__(self, reason: str, unreachable: bool = False, rcode: int | None = None,
                 ede: tuple[tuple[int, str], ...] = ()):
        super().__init__(reason)
        self.reason, self.unreachable, self.rcode, self.ede = reason, unreachable, rcode, ede


@dataclass
class _ZoneServers:
    name: dns.name.Name
    servers: tuple[Server, ...]


@dataclass
class _Cut:
    """A zone the evidence needs, and what was fetched for it."""

    name: dns.name.Name
    ds: list[dns.rrset.RRset] = field(default_factory=list)
    ds_denial: list[dns.rrset.RRset] = field(default_factory=list)
    dnskey: list[dns.rrset.RRset] = field(default_factory=list)

    def freeze(self) -> ZoneCut:
        return ZoneCut(self.name, tuple(self.ds), tuple(self.ds_denial), tuple(self.dnskey))


_DENIAL = (RdataType.NSEC, RdataType.NSEC3)
_Step = Generator[Query, "tuple[Reply | None, str]", "dns.message.Message"]


def _ede(message: dns.message.Message) -> tuple[tuple[int, str], ...]:
    out = []
    for opt in message.options if message.edns >= 0 else ():
        if opt.otype == 15:  # EDE (RFC 8914)
            out.append((int(opt.code), str(opt.text or "")))  # type: ignore[attr-defined]
    return tuple(out)


_FLAG_TEXT: dict[int, str] = {}  # header flags value → text: at most 65536, a few in use


def _flags(message: dns.message.Message) -> str:
    """The reply's header flags as the trace log writes them ("qr aa rd"), made once per value."""
    flags = int(message.flags)
    text = _FLAG_TEXT.get(flags)
    if text is None:
        text = _FLAG_TEXT[flags] = dns.flags.to_text(flags).lower()
    return text


MAX_MINIMISE_COUNT, MINIMISE_ONE_LAB = 10, 4  # RFC 9156 §2.3's values, as Unbound's


def _ancestors(name: dns.name.Name, top: dns.name.Name) -> list[dns.name.Name]:
    """Names from just below `top` down to `name` itself, shallowest first."""
    out = []
    n = name
    while n != top and len(n) > len(top):
        out.append(n)
        n = n.parent()
    return out[::-1]


class Resolution:
    """The state machine (see the module docstring). One instance answers one question."""

    def __init__(self, question: Question, anchors: Iterable[dns.name.Name], *,
                 hints: Sequence[Server] = (), server: Server | None = None,
                 cd: bool | None = None, limits: ResolutionLimits | None = None,
                 known: Mapping[dns.name.Name, Sequence[Server]] | None = None,
                 fallbacks: Sequence[Server] = (), minimise: bool = False,
                 every_server: bool = False):
        if (server is None) == (not hints):
            raise ValueError("give exactly one of root hints (iterative) or a server")
        self.question = question
        self.anchors = {share(a) for a in anchors}  # compared with every zone and name met
        self.server = server
        self.fallbacks = tuple(fallbacks)  # server mode: asked in turn when `server` does not answer
        self.minimise = minimise  # iterative mode: QNAME minimisation (RFC 9156, relaxed)
        self.minimised_queries = 0  # sent so far, for RFC 9156 §2.3's limit
        self.plain_servers: set[Server] = set()  # answered FORMERR/NOTIMP to EDNS: asked without
        self.every_server = every_server  # each referral's servers all found, not the first
        self.limits = limits or ResolutionLimits()
        self.cd_choice = cd  # None: CD=1 iff the server is recursive; True/False: forced
        self.recursive: bool | None = None
        self.zones: dict[dns.name.Name, _ZoneServers] = {}
        if hints:
            root = share(dns.name.root)
            self.zones[root] = _ZoneServers(root, ipv4_first(hints))
            # delegations a resolver learned earlier (its cache): start from the deepest one
            for zone, servers in (known or {}).items():
                if servers:
                    self.zones[zone] = _ZoneServers(zone, ipv4_first(servers))
        self.exchanges: list[Exchange] = []
        self.notes: list[str] = []
        self.depth = 0
        self.outcome: Outcome | None = None
        self._pending: Query | None = None
        self._gen = self._run()
        self._advance(None)

    # -- the public interface ------------------------------------------------------------

    @property
    def iterative(self) -> bool:
        return self.server is None

    def next_query(self) -> Query | None:
        """The query to send now; None once `outcome` is set."""
        return self._pending

    def result(self, reply: Reply | None, error: str = "") -> None:
        """Feed the reply to the pending query, or None with why no server answered."""
        query = self._pending
        if query is None:
            raise RuntimeError("no query is pending")
        if reply is None:
            self.exchanges.append(Exchange(query, None, None, error=error or "no answer"))
        else:
            self.exchanges.append(Exchange(query, reply.server, dns.rcode.to_text(rcode_of(reply.message)),
                                           reply.tcp, reply.size, flags=_flags(reply.message),
                                           ignored=reply.ignored))
        self._advance((reply, error))

    def give_up(self, reason: str, error: str = "") -> None:
        """End the resolution unanswered (the caller's time budget is spent): the outcome is
        a failure for want of answers. With `error`, the pending query was sent and got no
        answer for that reason; without, it was not sent."""
        if self.outcome is not None:
            return
        if error and self._pending is not None:
            self.exchanges.append(Exchange(self._pending, None, None, error=error))
        self._gen.close()
        self._pending = None
        self.outcome = Failed(reason, True, tuple(self.exchanges))

    # -- driving the generator --------------------------------------------------------------

    def _advance(self, value: tuple[Reply | None, str] | None) -> None:
        try:
            self._pending = self._gen.send(value)  # type: ignore[arg-type]
        except StopIteration as stop:
            self._pending = None
            self.outcome = stop.value
        except _Fail as fail:
            self._pending = None
            self.outcome = Failed(fail.reason, fail.unreachable, tuple(self.exchanges),
                                  fail.rcode, fail.ede)

    def _ask(self, query: Query) -> Generator[Query, tuple[Reply | None, str], tuple[Reply | None, str]]:
        if len(self.exchanges) >= self.limits.max_queries:
            raise _Fail(f"gave up after {self.limits.max_queries} queries (max_queries)")
        reply, error = yield query
        return reply, error

    # -- one lookup ---------------------------------------------------------------------------

    def _fetch(self, qname: dns.name.Name, rdtype: int, purpose: str) -> _Step:
        if self.iterative:
            return (yield from self._iterate(qname, rdtype, purpose))
        return (yield from self._forward(qname, rdtype, purpose))

    def _forward(self, qname: dns.name.Name, rdtype: int, purpose: str) -> _Step:
        assert self.server is not None
        if self.recursive is None:
            rd, cd = True, self.cd_choice is not False
        else:
            rd = self.recursive or self.cd_choice is True
            cd = self.cd_choice if self.cd_choice is not None else self.recursive
        servers: tuple[Server, ...] = (self.server, *self.fallbacks)
        while True:
            reply, error = yield from self._ask(Query(qname, rdtype, servers, rd, cd, None, purpose))
            if reply is None:
                raise _Fail(f"no answer from {error}", unreachable=True)
            rest = tuple(s for s in servers if s != reply.server)
            rcode = rcode_of(reply.message)
            if rcode not in (dns.rcode.SERVFAIL, dns.rcode.REFUSED) or not rest:
                break
            # as Unbound and BIND do: a forwarder that fails or refuses is not the last word
            self.notes.append(f"{reply.server}: {dns.rcode.to_text(rcode)} for {qname} "
                              f"{dns.rdatatype.to_text(rdtype)}; asking {rest[0]}")
            servers = rest
        if self.recursive is None:
            self.recursive = bool(reply.message.flags & dns.flags.RA)
        return reply.message

    def _zone_for(self, qname: dns.name.Name, rdtype: int) -> _ZoneServers:
        """The deepest zone with known servers that holds (qname, rdtype): strictly above
        qname for DS, which lives on the parent side of a cut (RFC 4035 §2.4)."""
        strict = rdtype == RdataType.DS and qname != dns.name.root
        best = max((z for z in self.zones if qname.is_subdomain(z) and not (strict and z == qname)),
                   key=len)
        return self.zones[best]

    def _iterate(self, qname: dns.name.Name, rdtype: int, purpose: str) -> _Step:
        zone = self._zone_for(qname, rdtype)
        servers = list(zone.servers)
        problems: list[str] = []
        # RFC 9156: labels asked below the zone, beyond one
        full, extra = not self.minimise, self._qmin_step(qname, len(zone.name)) - 1
        for _ in range(self.limits.max_referrals + len(qname) + 1):
            if not servers:
                raise _Fail(f"{qname} {dns.rdatatype.to_text(rdtype)}: no server of {zone.name} "
                            f"gave a usable answer ({'; '.join(problems)})")
            ask = qname if full else minimised(qname, zone.name, extra)
            if ask != qname:
                q = Query(ask, RdataType.A, tuple(servers), False, False, zone.name,
                          f"{purpose} (minimised)")
                self.minimised_queries += 1
                reply, error = yield from self._ask(q)
                step = self._minimised_step(reply, zone.name, ask)
                if step == "deeper":
                    extra += self._qmin_step(qname, len(ask))
                    continue
                if step == "full":
                    full = True
                    continue
                assert reply is not None and isinstance(step, dns.name.Name)
                zone, servers = yield from self._referred(reply.message, zone, step)
                problems, extra = [], self._qmin_step(qname, len(zone.name)) - 1
                continue
            plain = [s for s in servers if s in self.plain_servers]
            if plain:  # RFC 6891 §7: asked again without EDNS, that server alone
                q = Query(qname, rdtype, (plain[0],), False, False, zone.name, purpose, edns=False)
            else:
                q = Query(qname, rdtype, tuple(servers), False, False, zone.name, purpose)
            reply, error = yield from self._ask(q)
            if reply is None and plain:
                problems.append(f"{plain[0]}: {error} (without EDNS)")
                servers = [s for s in servers if s != plain[0]]
                continue
            if reply is None:
                if problems:  # some server answered, badly; the rest are silent
                    raise _Fail(f"{qname} {dns.rdatatype.to_text(rdtype)}: no server of {zone.name} "
                                f"gave a usable answer ({'; '.join(problems + [error])})")
                raise _Fail(f"no server of {zone.name} answered {qname} "
                            f"{dns.rdatatype.to_text(rdtype)}: {error}", unreachable=True)
            m = reply.message
            rcode = rcode_of(m)
            if rcode in (dns.rcode.FORMERR, dns.rcode.NOTIMP) and m.edns < 0 and q.edns:
                # RFC 6891 §7: a server without EDNS says so; ask it again in plain DNS (its
                # answers carry no DNSSEC records: enough for an insecure zone, never secure)
                self.plain_servers.add(reply.server)
                self.notes.append(f"{reply.server}: {dns.rcode.to_text(rcode)} to EDNS; asked "
                                  f"again without it")
                continue
            if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                problems.append(f"{reply.server}: {dns.rcode.to_text(rcode)}")
                servers = [s for s in servers if s != reply.server]
                continue
            kind, child = self._classify(m, zone.name, qname, rdtype)
            if kind == "answer":
                kept = in_zone(m, zone.name, qname, rdtype)
                if m.answer and not kept.answer:  # nothing it may say: as good as no answer
                    problems.append(f"{reply.server}: an answer wholly outside {zone.name}")
                    servers = [s for s in servers if s != reply.server]
                    continue
                return kept
            if kind == "lame":
                problems.append(f"{reply.server}: {child}")
                servers = [s for s in servers if s != reply.server]
                continue
            assert isinstance(child, dns.name.Name)
            zone, servers = yield from self._referred(m, zone, child)
            problems, extra = [], 0
        raise _Fail(f"{qname} {dns.rdatatype.to_text(rdtype)}: more than "
                    f"{self.limits.max_referrals} referrals (max_referrals)")

    def _qmin_step(self, qname: dns.name.Name, shown: int) -> int:
        """How many labels of `qname` to add to the `shown` ones for the next minimised query
        (RFC 9156 §2.3): one while fewer than MINIMISE_ONE_LAB were sent, then the rest
        spread over what is left of MAX_MINIMISE_COUNT — all of it once that is spent."""
        if self.minimised_queries < MINIMISE_ONE_LAB:
            return 1
        left = MAX_MINIMISE_COUNT - self.minimised_queries
        if left <= 0:
            return len(qname)
        return max(1, -(-(len(qname) - shown) // left))

    def _minimised_step(self, reply: Reply | None, zone: dns.name.Name,
                        ask: dns.name.Name) -> str | dns.name.Name:
        """After a minimised query: the child zone it was referred to; "deeper" (the name
        exists, not as a cut: add a label); or "full" (ask the real question — on NXDOMAIN,
        so that the proof comes for the name asked; on any error, as relaxed mode does)."""
        if reply is None or rcode_of(reply.message) != dns.rcode.NOERROR:
            return "full"
        kind, child = self._classify(reply.message, zone, ask, RdataType.A)
        if kind == "referral" and isinstance(child, dns.name.Name):
            return child
        return "deeper" if kind == "answer" else "full"

    def _referred(self, m: dns.message.Message, zone: _ZoneServers, child: dns.name.Name,
                  ) -> Generator[Query, tuple[Reply | None, str], tuple[_ZoneServers, list[Server]]]:
        """Follow a referral: the child zone's servers, from glue or looked up (with
        `every_server`, the addresses of all of them: glue, and the names without it)."""
        addresses = self._glue(m, zone.name, child)
        if not addresses or self.every_server:
            glued = {r.name for r in m.additional if r.rdtype in (RdataType.A, RdataType.AAAA)
                     and r.name.is_subdomain(zone.name)}
            addresses = ipv4_first([*addresses, *(yield from self._ns_addresses(m, child, glued))])
        if not addresses:
            raise _Fail(f"no address for any name server of {child} (referred by {zone.name})")
        self.zones[child] = _ZoneServers(child, addresses)
        return self.zones[child], list(addresses)

    @staticmethod
    def _classify(m: dns.message.Message, zone: dns.name.Name, qname: dns.name.Name,
                  rdtype: int) -> tuple[str, dns.name.Name | str | None]:
        """("answer", None), ("referral", child zone) or ("lame", why)."""
        if rcode_of(m) == dns.rcode.NXDOMAIN or m.answer or m.flags & dns.flags.AA:
            return "answer", None
        if any(r.rdtype == RdataType.SOA for r in m.authority):
            return "answer", None
        cuts = [r.name for r in m.authority if r.rdtype == RdataType.NS]
        below = [c for c in cuts if c != zone and c.is_subdomain(zone) and qname.is_subdomain(c)
                 and not (rdtype == RdataType.DS and c == qname)]
        if below:
            return "referral", max(below, key=len)
        if cuts:
            return "lame", f"referral to {', '.join(sorted(map(str, cuts)))} is not below {zone}"
        return "lame", "neither an answer nor a referral"

    @staticmethod
    def _glue(m: dns.message.Message, zone: dns.name.Name, child: dns.name.Name) -> tuple[Server, ...]:
        """Addresses of the child's name servers from the additional section, taken only
        within the referring zone's bailiwick."""
        ns = {rd.target for r in m.authority if r.rdtype == RdataType.NS and r.name == child
              for rd in r}  # type: ignore[attr-defined]
        out = [Server(rd.address) for r in m.additional  # type: ignore[attr-defined]
               if r.rdtype in (RdataType.A, RdataType.AAAA) and r.name in ns and r.name.is_subdomain(zone)
               for rd in r]
        return ipv4_first(out)

    def _ns_addresses(self, m: dns.message.Message, child: dns.name.Name, glued: set[dns.name.Name],
                      ) -> Generator[Query, tuple[Reply | None, str], tuple[Server, ...]]:
        """Look up the addresses of name servers that came without glue (bounded): A, and
        AAAA for a name with no A record; the first name that has any, or with
        `every_server` each name. Names inside the child are skipped before the bound is
        applied: they need glue we were not given."""
        names = sorted({rd.target for r in m.authority if r.rdtype == RdataType.NS and r.name == child  # type: ignore[attr-defined]
                        for rd in r if not rd.target.is_subdomain(child)  # type: ignore[attr-defined]
                        and rd.target not in glued})[: self.limits.max_ns_names]  # type: ignore[attr-defined]
        if self.depth >= self.limits.max_depth:
            raise _Fail(f"name server addresses for {child} nest too deep (max_depth)")
        out: list[Server] = []
        self.depth += 1
        try:
            for name in names:
                for rdtype in (RdataType.A, RdataType.AAAA):
                    ans = yield from self._noted(self._iterate(name, rdtype, f"address of {child} server"),
                                                 f"address of {name}")
                    if ans is None:
                        break
                    found = [Server(rd.address) for r in ans.answer if r.rdtype == rdtype
                             for rd in r]  # type: ignore[attr-defined]
                    out += found
                    if found or rcode_of(ans) == dns.rcode.NXDOMAIN:
                        break
                if out and not self.every_server:
                    break
        finally:
            self.depth -= 1
        return ipv4_first(out)

    # -- the whole trace ----------------------------------------------------------------------

    def _anchor_above(self, name: dns.name.Name) -> dns.name.Name | None:
        return max((a for a in self.anchors if name.is_subdomain(a)), key=len, default=None)

    def _run(self) -> Generator[Query, tuple[Reply | None, str], Gathered]:
        q = self.question
        messages: list[dns.message.Message] = []
        names = [q.name]
        name = q.name
        for _ in range(self.limits.max_chain + 1):
            m = yield from self._fetch(name, q.rdtype, "question" if name == q.name else "CNAME target")
            if rcode_of(m) not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                where = f"{self.server}" if self.server else "the server"
                raise _Fail(f"{dns.rcode.to_text(rcode_of(m))} from {where} for {name} "
                            f"{dns.rdatatype.to_text(q.rdtype)}", rcode=rcode_of(m), ede=_ede(m))
            messages.append(m)
            try:
                target = chain_target(m, name, q.rdtype)
            except ChainLoop as loop:
                raise _Fail(str(loop)) from None
            if target is None:
                break
            if target in names:  # the chain is back at a name asked before
                raise _Fail(f"CNAME/DNAME loop: {q.name} leads back to {target}")
            name = target
            names.append(name)
        else:
            raise _Fail(f"CNAME/DNAME chain longer than {self.limits.max_chain} (max_chain)")

        answer = on_chain(merge(r for m in messages for r in m.answer), q.name, q.rdtype)
        authority = merge(r for m in messages for r in m.authority
                           if not (r.rdtype == RdataType.NS or r.covers == RdataType.NS))
        rcode = rcode_of(messages[-1])

        cuts = yield from self._zones(names, answer, authority)
        evidence = Evidence(q, rcode, tuple(answer), tuple(authority), tuple(c.freeze() for c in cuts))
        return Gathered(evidence, tuple(self.exchanges), tuple(self.notes), self.recursive)

    def _zones(self, names: list[dns.name.Name], answer: list[dns.rrset.RRset],
               authority: list[dns.rrset.RRset]) -> Generator[Query, tuple[Reply | None, str], list[_Cut]]:
        """Find every zone from an anchor down to the data and fetch its DS and DNSKEY links."""
        seeds: set[dns.name.Name] = set(signers(answer) | signers(authority) | soa_owners(authority))
        for n in names:
            anchor = self._anchor_above(n)
            if anchor is None:
                continue
            seeds.add(anchor)
            if self.iterative:  # referrals already showed the cuts on the way down
                seeds |= {z for z in self.zones if n.is_subdomain(z) and z.is_subdomain(anchor)}
            else:  # ask each ancestor for SOA: an apex answers with its own SOA
                for a in _ancestors(n, anchor):
                    if (yield from self._is_apex(a)):
                        seeds.add(a)
        done: dict[dns.name.Name, _Cut] = {}
        todo = set(seeds)
        while todo:
            z = min(todo, key=len)  # shallowest first: parents before children
            todo.discard(z)
            anchor = self._anchor_above(z)
            if z in done or anchor is None:
                continue
            cut = _Cut(z)
            done[z] = cut
            if self.iterative and z not in self.zones:
                # a zone seen only by its signatures or SOA: served by its parent's servers
                self.zones[z] = _ZoneServers(z, self._zone_for(z, RdataType.SOA).servers)
            found: set[dns.name.Name] = set()
            dnskey = yield from self._link(z, RdataType.DNSKEY)
            if dnskey is not None:
                cut.dnskey = [r for r in dnskey.answer if r.name == z and
                              (r.rdtype == RdataType.DNSKEY or r.covers == RdataType.DNSKEY)]
            if z != anchor:  # an anchored zone needs no DS
                ds = yield from self._link(z, RdataType.DS)
                if ds is not None:
                    cut.ds = [r for r in ds.answer if r.name == z and
                              (r.rdtype == RdataType.DS or r.covers == RdataType.DS)]
                    if not cut.ds:
                        cut.ds_denial = [r for r in ds.authority
                                         if r.rdtype in _DENIAL or r.covers in _DENIAL]
                    # the zone that answered for the DS is the parent: it must be in the chain
                    found |= signers(ds.answer) | signers(ds.authority) | soa_owners(ds.authority)
                # every known zone between the anchor and this one belongs in the chain
                if self.iterative:
                    found |= {p for p in self.zones if z.is_subdomain(p) and p.is_subdomain(anchor)}
            todo |= {f for f in found if f not in done and z.is_subdomain(f)}
        return sorted(done.values(), key=lambda c: (len(c.name), c.name))

    def _link(self, zone: dns.name.Name, rdtype: int) -> Generator[Query, tuple[Reply | None, str], dns.message.Message | None]:
        """A zone's DS or DNSKEY RRset; a failure becomes a note (the validator then reports
        what is missing) unless the query budget is spent."""
        kind = dns.rdatatype.to_text(rdtype)
        m = yield from self._noted(self._fetch(zone, rdtype, f"{kind} link"), f"{zone} {kind}")
        if m is None:
            return None
        if rcode_of(m) not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            self.notes.append(f"{zone} {kind}: {dns.rcode.to_text(rcode_of(m))}")
            return None
        return m

    def _noted(self, fetching: _Step, what: str) -> Generator[Query, tuple[Reply | None, str], dns.message.Message | None]:
        """What `fetching` gets; None, with a note saying why, when it fails — unless the
        query budget is spent, which ends the whole resolution."""
        try:
            return (yield from fetching)
        except _Fail as fail:
            if len(self.exchanges) >= self.limits.max_queries:
                raise
            self.notes.append(f"{what}: {fail.reason}")
            return None

    def _is_apex(self, name: dns.name.Name) -> Generator[Query, tuple[Reply | None, str], bool]:
        m = yield from self._noted(self._fetch(name, RdataType.SOA, "zone cut"), f"{name} SOA")
        if m is None:
            return False
        return any(r.rdtype == RdataType.SOA and r.name == name for r in m.answer)
