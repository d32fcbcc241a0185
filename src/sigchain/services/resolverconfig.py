"""`sigchain resolver`'s settings: from flags, or from a TOML file that mirrors them (and adds
the cache's bounds), read so that every error names the file and line."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name

from sigchain import tomltext
from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.resolve.cache import CacheLimits
from sigchain.core.resolve.exchange import ResolutionLimits
from sigchain.core.validate.anchors import Server, parse_server
from sigchain.core.validate.nta import DEFAULT_LIFETIME, MAX_LIFETIME, RECHECK
from sigchain.edge.server import ListenAddress, parse_listen
from sigchain.errors import InputError
from sigchain.services.configtext import Option, Reader, read_config_text

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
DEFAULT_LISTEN = "127.0.0.1"
# Per client question (Unbound bounds its sends per query similarly): a hostile zone cannot
# make one question cost more than this many upstream queries.
RESOLVER_LIMITS = ResolutionLimits(max_queries=64)
MAX_WORKERS = 64
# Where RFC 5011 keeps what it learnt of the managed anchors (Unbound: auto-trust-anchor-file).
DEFAULT_ANCHOR_STATE = "/var/lib/sigchain/root-anchors.json"


@dataclass(frozen=True)
class ResolverConfig:
    listens: tuple[ListenAddress, ...] = (ListenAddress(DEFAULT_LISTEN, 53),)
    anchor: str | None = None  # file of static DS/DNSKEY anchors
    managed_anchor: str | None = None  # file of anchors kept by RFC 5011; neither: the built-in
    anchor_state: str = DEFAULT_ANCHOR_STATE  # RFC 5011 state of the managed anchors
    # negative trust anchors (RFC 7646): (name, lifetime in seconds)
    negative: tuple[tuple[dns.name.Name, int], ...] = ()
    nta_recheck: int = RECHECK  # seconds between re-checks of an NTA's zone (BIND: nta-recheck)
    root_hints: str | None = None  # None: the IANA root servers
    allow: tuple[Network, ...] = LOOPBACK
    forward: tuple[tuple[dns.name.Name, tuple[Server, ...]], ...] = ()
    require_secure: tuple[dns.name.Name, ...] = ()
    metrics: ListenAddress | None = None
    cache: CacheLimits = field(default_factory=CacheLimits)
    limits: ResolutionLimits = RESOLVER_LIMITS  # per client query: upstream work
    policy: DnssecPolicy = DEFAULT_POLICY  # validation work: signatures, NSEC3 hashes
    workers: int = 1  # processes answering on the same addresses, each with its own cache
    # CH TXT answers about the server (as Unbound's identity / version): id.server and
    # hostname.bind get `identity` (None: the host's name), version.server and version.bind
    # get `version` (None: sigchain's); "" tells nothing (REFUSED, as for any other CH query)
    identity: str | None = None
    version: str | None = None
    source: str | None = None  # the config file, re-read on SIGHUP


def parse_allow(text: str, where: str = "--allow") -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise InputError(f"bad {where} {text!r}: expected ADDR or ADDR/LEN") from None


def parse_name(text: str, where: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text.strip())
    except dns.exception.DNSException as exc:
        raise InputError(f"bad {where} {text!r}: {exc}") from None


def parse_forward(text: str) -> tuple[dns.name.Name, tuple[Server, ...]]:
    """`ZONE=ADDR[#PORT][,ADDR[#PORT]…]`; `.` forwards everything."""
    zone, sep, servers = text.partition("=")
    if not sep or not servers.strip():
        raise InputError(f"bad --forward {text!r}: expected ZONE=ADDR[#PORT][,…]")
    return (parse_name(zone, "forward zone"),
            tuple(parse_server(s.strip(), what="forwarder") for s in servers.split(",")))


def parse_negative(text: str) -> tuple[dns.name.Name, int]:
    """`NAME[=LIFETIME]`: a negative trust anchor, LIFETIME in seconds (or with s/m/h/d)."""
    name, sep, lifetime = text.partition("=")
    return parse_name(name, "negative anchor"), (parse_lifetime(lifetime) if sep else DEFAULT_LIFETIME)


def parse_lifetime(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    scale = units.get(t[-1:], 0)
    digits = t[:-1] if scale else t
    if not digits.isdigit() or not 1 <= int(digits) * (scale or 1) <= MAX_LIFETIME:
        raise InputError(f"bad negative anchor lifetime {text!r}: expected seconds (or with "
                         f"s/m/h/d), at most {MAX_LIFETIME // 86400} days")
    return int(digits) * (scale or 1)


def from_flags(listens: Iterable[str] = (), anchor: str | None = None,
               root_hints: str | None = None, allow: Iterable[str] = (),
               forward: Iterable[str] = (), require_secure: Iterable[str] = (),
               metrics: str | None = None, workers: int | None = None,
               base: ResolverConfig | None = None, managed_anchor: str | None = None,
               anchor_state: str | None = None, negative: Iterable[str] = ()) -> ResolverConfig:
    """The config the flags describe; given on top of a config file (`base`), each flag
    given replaces that setting of the file."""
    c = base or ResolverConfig()
    changes: dict[str, Any] = {}
    if listens:
        changes["listens"] = tuple(parse_listen(a) for a in listens)
    if anchor is not None:
        changes.update(anchor=anchor, managed_anchor=None)
    if managed_anchor is not None:
        if anchor is not None:
            raise InputError("give --anchor (static) or --managed-anchor (RFC 5011), not both")
        changes.update(managed_anchor=managed_anchor, anchor=None)
    if anchor_state is not None:
        changes["anchor_state"] = anchor_state
    if negative:
        changes["negative"] = tuple(parse_negative(n) for n in negative)
    if root_hints is not None:
        changes["root_hints"] = root_hints
    if allow:
        changes["allow"] = tuple(parse_allow(a) for a in allow)
    if forward:
        changes["forward"] = tuple(parse_forward(f) for f in forward)
    if require_secure:
        changes["require_secure"] = tuple(parse_name(n, "--require-secure") for n in require_secure)
    if metrics is not None:
        changes["metrics"] = parse_listen(metrics)
    if workers is not None:
        if not 1 <= workers <= MAX_WORKERS:
            raise InputError(f"workers {workers} out of range 1..{MAX_WORKERS}")
        changes["workers"] = workers
    return dataclasses.replace(c, **changes)


_KEYS = ("listen", "anchor", "managed-anchor", "anchor-state", "negative-anchors", "nta-recheck", "root-hints", "allow", "forward", "require-secure", "metrics",
         "cache", "limits", "workers", "identity", "version")
MAX_TXT = 255  # octets of one TXT character-string
_CACHE = (
    Option("max-bytes", "max_bytes", int, 0, 1 << 40),
    Option("max-ttl", "max_ttl", int, 0, 1 << 31),
    Option("min-ttl", "min_ttl", int, 0, 86400),
    Option("max-negative-ttl", "max_negative_ttl", int, 0, 1 << 31),
    Option("bogus-ttl", "bogus_ttl", int, 0, 86400),
    Option("stale-window", "stale_window", int, 0, 7 * 86400),
    Option("stale-ttl", "stale_ttl", int, 1, 3600),
)


def load_config(path: str) -> ResolverConfig:
    text = read_config_text(path)
    return parse_config(text, path)


def parse_config(text: str, path: str) -> ResolverConfig:
    data = tomltext.loads(text, path)
    r = Reader(path, text)
    r.unknown(data, _KEYS, "the file", None)

    def strings(key: str) -> list[str]:
        if key not in data:
            return []
        values = r.string_list(data[key], key, r.where.find(None, key))
        for v in values:
            if not isinstance(v, str):
                raise r.fail(f"{key} must be a string or a list of strings", r.where.find(None, key))
        return values

    def one(key: str) -> str | None:
        values = strings(key)
        if len(values) > 1:
            raise r.fail(f"{key} takes one value", r.where.find(None, key))
        return values[0] if values else None

    def at(key: str, parse: Any) -> Any:
        try:
            return parse()
        except InputError as exc:
            raise r.fail(str(exc), r.where.find(None, key)) from None

    anchor, hints = one("anchor"), one("root-hints")
    managed, state = one("managed-anchor"), one("anchor-state")
    if anchor and managed:
        raise r.fail("give anchor (static) or managed-anchor (RFC 5011), not both",
                     r.where.find(None, "managed-anchor"))
    base = ResolverConfig(anchor=r.file_path(anchor) if anchor else None,
                          managed_anchor=r.file_path(managed) if managed else None,
                          anchor_state=r.file_path(state) if state else DEFAULT_ANCHOR_STATE,
                          root_hints=r.file_path(hints) if hints else None,
                          negative=_negative(r, data), cache=_cache(r, data), source=path)
    base = dataclasses.replace(base, **dict(zip(("limits", "policy"), _limits(r, data), strict=True)))
    c = base
    for key, flag in (("listen", "listens"), ("allow", "allow"), ("forward", "forward"),
                      ("require-secure", "require_secure")):
        values = strings(key)
        if values:
            c = at(key, lambda v=values, f=flag, b=c: from_flags(**{f: v}, base=b))  # type: ignore[misc]
    metrics = one("metrics")
    if metrics is not None:
        c = at("metrics", lambda: from_flags(metrics=metrics, base=c))
    if "nta-recheck" in data:
        recheck = data["nta-recheck"]
        if isinstance(recheck, bool) or not isinstance(recheck, int) or not 1 <= recheck <= 86400:
            raise r.fail("nta-recheck must be seconds in 1..86400", r.where.find(None, "nta-recheck"))
        c = dataclasses.replace(c, nta_recheck=recheck)
    for key in ("identity", "version"):
        if key in data:
            text = data[key]
            if not isinstance(text, str) or len(text.encode()) > MAX_TXT:
                raise r.fail(f"{key} must be a string of at most {MAX_TXT} octets "
                             '("" to tell nothing)', r.where.find(None, key))
            c = dataclasses.replace(c, **{key: text})
    if "workers" in data:
        workers = data["workers"]
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise r.fail("workers must be an integer", r.where.find(None, "workers"))
        c = at("workers", lambda: from_flags(workers=workers, base=c))
    return c


_LIMITS = (
    Option("max-queries", "max_queries", int, 1, 1000),
    Option("max-referrals", "max_referrals", int, 1, 100),
    Option("max-cname-chain", "max_chain", int, 0, 32),
    Option("max-ns-depth", "max_depth", int, 0, 10),
    Option("max-verifications", "max_verifications", int, 1, 10000),
    Option("max-nsec3-hashes", "max_nsec3_hashes", int, 1, 10000),
    Option("max-nsec3-iterations", "max_nsec3_iterations", int, 0, 2500),
)
_VALIDATION = ("max_verifications", "max_nsec3_hashes")


def _limits(r: Reader, data: Mapping[str, Any]) -> tuple[ResolutionLimits, DnssecPolicy]:
    given = r.numbers(data, "limits", _LIMITS)
    iterations = given.pop("max_nsec3_iterations", DEFAULT_POLICY.max_nsec3_iterations)
    checks = dataclasses.replace(DEFAULT_POLICY.limits, **{k: given.pop(k) for k in _VALIDATION
                                                           if k in given})
    policy = dataclasses.replace(DEFAULT_POLICY, max_nsec3_iterations=iterations, limits=checks)
    return dataclasses.replace(RESOLVER_LIMITS, **given), policy


def _cache(r: Reader, data: Mapping[str, Any]) -> CacheLimits:
    return CacheLimits(**r.numbers(data, "cache", _CACHE))


def _negative(r: Reader, data: Mapping[str, Any]) -> tuple[tuple[dns.name.Name, int], ...]:
    """`[[negative-anchors]]` tables: name = "…", lifetime = seconds or "1h" (default 1 h);
    an error names the line of its table's header."""
    tables = data.get("negative-anchors", [])
    header = r"\[\[\s*negative-anchors\s*\]\]"
    where = r.where.find(header, None) or r.where.find(None, "negative-anchors")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise r.fail("negative-anchors must be tables: [[negative-anchors]] name = \"…\"", where)
    out = []
    for i, t in enumerate(tables):
        where = r.where.find(header, None, i) or where
        extra = sorted(set(t) - {"name", "lifetime"})
        if extra:
            raise r.fail(f"unknown setting {extra[0]!r} in [[negative-anchors]] "
                         "(expected: lifetime, name)", where)
        name, lifetime = t.get("name"), t.get("lifetime", DEFAULT_LIFETIME)
        if not isinstance(name, str) or isinstance(lifetime, bool) \
                or not isinstance(lifetime, int | str):
            raise r.fail("negative-anchors need name = \"NAME\" and lifetime = seconds", where)
        try:
            out.append((parse_name(name, "negative anchor"), parse_lifetime(str(lifetime))))
        except InputError as exc:
            raise r.fail(str(exc), where) from None
    return tuple(out)
