"""`sigchain serve --config FILE`: the configuration file (TOML).

Without a config file, `--zone NAME=FILE` and `--listen ADDR[#PORT]` serve every zone on
every address, with zone transfers refused and no NOTIFY. The config file adds per-address
zone sets, TSIG keys, transfer ACLs and NOTIFY targets::

    # Optional: TSIG keys in BIND syntax (a path, or a list of paths), e.g. a file
    # written by `tsig-keygen`:  key "xfr-key" { algorithm hmac-sha256; secret "..."; };
    tsig-keyfile = "tsig.key"

    [options]                  # all optional
    udp-size = 1232            # EDNS UDP size advertised, and the largest UDP answer
    tcp-idle-timeout = 10      # seconds an idle TCP connection is kept
    tcp-io-timeout = 2         # seconds to read the rest of a query or write one answer
    tcp-clients = 256          # TCP connections open at once (full: the longest idle closed)
    tcp-clients-per-address = 32  # of them from one client address
    answer-cache-size = 128    # MiB of rendered answers kept per process (every address's)
    rate-limit-responses-per-second = 0  # UDP response-rate limiting as BIND's (0: off)
    rate-limit-window = 15     # seconds of debt a client network can run up
    rate-limit-slip = 2        # every 2nd limited answer sent truncated (TC=1); 0: drop all
    ixfr-history = 20          # zone versions whose differences are kept for IXFR (0: none)
    udp-workers = 2            # processes answering UDP (default: one per CPU, as Knot)
    control-socket = "/run/sigchain/serve.sock"  # for `sigchain ctl` (0600; default: none)

    [keys.xfr-key]             # a TSIG key (RFC 8945); the key name is the table name
    algorithm = "hmac-sha256"  # hmac-md5, hmac-sha1, hmac-sha224, -sha256, -sha384, -sha512
    secret = "base64..."

    [zones."example.test."]    # quote zone names: they contain dots
    file = "example.test.signed"
    # AXFR/IXFR is REFUSED unless an entry matches: "any", an address "127.0.0.1",
    # a network "10.0.0.0/8", a key "key:xfr-key" (TSIG-signed with that key, from
    # anywhere), or both "127.0.0.1 key:xfr-key" (that address AND that key).
    allow-transfer = ["127.0.0.1", "key:xfr-key"]
    # Sent a NOTIFY when a reload brings a new serial (and at start-up), over UDP,
    # retried until answered: "ADDR[#PORT]", or a table to sign it with a TSIG key.
    also-notify = ["127.0.0.1#5301", { address = "127.0.0.2#5301", key = "xfr-key" }]
    # A reload that would serve the zone unsigned after signed is refused (the old version
    # stays) unless the zone is meant to go insecure (its DS gone from the parent first).
    allow-unsigned = false
    # RFC 2136 UPDATE (inline-signed zones only), same entries as allow-transfer; REFUSED
    # unless one matches (as BIND without allow-update).
    allow-update = ["key:xfr-key"]

    [[listen]]                 # one table per address; default: 127.0.0.1#53, every zone
    address = "127.0.0.1#5300" # ADDR[#PORT], UDP and TCP
    zones = ["example.test."]  # the zones served there (default: every zone)

Each address answers for its own zones only: queries for the others get REFUSED, and
transfer requests and NOTIFYs for them NOTAUTH, as BIND does for zones it does not serve.
Relative file names are relative to the config file's directory. Zone names and key names
may be written with or without the final dot. Unknown settings are errors (a typo must not
silently open or close transfers). Errors name the file, and the line where it can be told.
A zone signed by the server instead (services.inline, README "Inline signing") has no
`file` but `unsigned = FILE`, `keys = DIR` and `policy = "default"|"ksk-zsk"|FILE`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.tsig

from sigchain import tomltext
from sigchain.core.rollover.policy import KeyPolicy
from sigchain.core.serve.acl import Acl
from sigchain.core.serve.cache import DEFAULT_CACHE_BYTES
from sigchain.core.serve.limits import DEFAULT_UDP_SIZE, MAX_UDP_SIZE, MIN_UDP_SIZE
from sigchain.core.serve.rrl import RateLimit
from sigchain.core.serve.transfer import DEFAULT_HISTORY
from sigchain.edge.server import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_IO_TIMEOUT,
    DEFAULT_TCP_CLIENTS,
    DEFAULT_TCP_CLIENTS_PER_ADDRESS,
    ListenAddress,
    TcpLimits,
    parse_listen,
)
from sigchain.errors import InputError
from sigchain.services.configtext import Option, Reader, key_ref, read_config_text
from sigchain.services.inlineconfig import INLINE_KEYS, inline_settings
from sigchain.services.parentwatch import ParentCheckSettings, parse_settings
from sigchain.services.tsigkeys import make_key, parse_bind_keys

DEFAULT_LISTEN = "127.0.0.1#53"


@dataclass(frozen=True)
class NotifyTarget:
    """A secondary to NOTIFY, optionally with the TSIG key to sign the NOTIFY with."""

    address: ListenAddress
    key: dns.name.Name | None = None

    def __str__(self) -> str:
        return f"{self.address}" + (f" (TSIG {self.key})" if self.key else "")


@dataclass(frozen=True)
class ZoneConfig:
    """A zone to serve: its name, the signed zone file, who may transfer it, whom to NOTIFY."""

    name: dns.name.Name
    path: str
    allow_transfer: Acl = field(default_factory=Acl)
    also_notify: tuple[NotifyTarget, ...] = ()
    allow_unsigned: bool = False  # a reload may replace the signed zone with an unsigned one
    # Inline signing (services.inline): `path` is then the unsigned file, signed by the server.
    keys: str | None = None  # the key directory
    policy: KeyPolicy | None = None
    policy_file: str | None = None  # re-read on SIGHUP (None: a built-in policy)
    allow_update: Acl = field(default_factory=Acl)  # RFC 2136 UPDATE (inline zones): who may
    parent_check: ParentCheckSettings | None = None  # the DS at the parent (services.parentwatch)

    @property
    def inline(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True)
class ListenConfig:
    """One address (UDP and TCP) and the zones served on it."""

    address: ListenAddress
    zones: tuple[dns.name.Name, ...]


MAX_UDP_WORKERS = 64


def default_udp_workers() -> int:
    """One process answering UDP per CPU this process may run on (Knot's udp-workers)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_UDP_WORKERS))


@dataclass(frozen=True)
class ServeConfig:
    """Everything `sigchain serve` needs to run."""

    zones: tuple[ZoneConfig, ...]
    listens: tuple[ListenConfig, ...]
    keys: Mapping[dns.name.Name, dns.tsig.Key] = field(default_factory=dict)
    udp_size: int = DEFAULT_UDP_SIZE
    tcp_idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    ixfr_history: int = DEFAULT_HISTORY
    source: str | None = None  # the config file, for messages
    udp_workers: int = field(default_factory=default_udp_workers)
    tcp_io_timeout: float = DEFAULT_IO_TIMEOUT
    tcp_clients: int = DEFAULT_TCP_CLIENTS
    tcp_clients_per_address: int = DEFAULT_TCP_CLIENTS_PER_ADDRESS
    answer_cache_size: int = DEFAULT_CACHE_BYTES >> 20  # MiB
    rate_limit: RateLimit = RateLimit()
    control_socket: str | None = None  # `sigchain ctl`'s Unix socket (none: no control)

    @property
    def tcp_limits(self) -> TcpLimits:
        return TcpLimits(self.tcp_idle_timeout, self.tcp_io_timeout, self.tcp_clients,
                         self.tcp_clients_per_address)


def from_flags(zones: Sequence[ZoneConfig], listens: Sequence[ListenAddress], *,
               udp_size: int = DEFAULT_UDP_SIZE,
               tcp_idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> ServeConfig:
    """The config `--zone`/`--listen` describe: every zone on every address, no transfers."""
    names = tuple(z.name for z in zones)
    _check_zone_names(names, None)
    return ServeConfig(tuple(zones), tuple(ListenConfig(a, names) for a in listens),
                       udp_size=udp_size, tcp_idle_timeout=tcp_idle_timeout)


def _check_zone_names(names: Sequence[dns.name.Name], path: str | None) -> None:
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise InputError(f"zone given twice: {', '.join(sorted(n.to_text() for n in dupes))}",
                         file=path)
    if not names:
        raise InputError("no zone to serve: give --zone NAME=SIGNEDFILE, or [zones] in --config",
                         file=path)


# ---- the TOML file -------------------------------------------------------------------------


def _zone_header(name: str) -> str:
    bare = name.rstrip(".")
    alt = "|".join(re.escape(q + n + q) for n in {bare, bare + "."} for q in ('"', "'"))
    return rf"\[\s*zones\s*\.\s*(?:{alt})\s*\]"


def load_config(path: str) -> ServeConfig:
    """Read and check a `sigchain serve` config file; InputError (exit 2) names the file and,
    when it can, the line."""
    text = read_config_text(path)
    return parse_config(text, path)


_OPTIONS = (
    Option("udp-size", "udp_size", int, MIN_UDP_SIZE, MAX_UDP_SIZE),
    Option("tcp-idle-timeout", "tcp_idle_timeout", float, 0, must="a positive number of seconds"),
    Option("ixfr-history", "ixfr_history", int, 0, 1000),
    Option("udp-workers", "udp_workers", int, 1, MAX_UDP_WORKERS),
    Option("tcp-io-timeout", "tcp_io_timeout", float, 0, must="a positive number of seconds"),
    Option("tcp-clients", "tcp_clients", int, 1, 65535),
    Option("tcp-clients-per-address", "tcp_clients_per_address", int, 1, 65535),
    Option("answer-cache-size", "answer_cache_size", int, 0, 1 << 20),
    Option("rate-limit-responses-per-second", "rrl_per_second", int, 0, 1000),
    Option("rate-limit-window", "rrl_window", int, 1, 3600),
    Option("rate-limit-slip", "rrl_slip", int, 0, 10),
)


def parse_config(text: str, path: str) -> ServeConfig:
    """`load_config` on text already read (`path` for messages and relative file names)."""
    data = tomltext.loads(text, path)
    r = Reader(path, text)
    r.unknown(data, ("tsig-keyfile", "options", "keys", "zones", "listen"), "the file", None)
    options = _options(r, data)
    keys = _keyfile_keys(r, data)
    _table_keys(r, data, keys)
    zones = [_zone(r, zname, body, keys)
             for zname, body in r.table(data.get("zones", {}), "[zones]", None).items()]
    names = [z.name for z in zones]
    _check_zone_names(names, path)
    rrl = {k[4:]: options.pop(k) for k in list(options) if k.startswith("rrl_")}
    if rrl:
        options["rate_limit"] = RateLimit(**rrl)
    return ServeConfig(tuple(zones), _listens(r, data, names), keys, source=path, **options)


def _options(r: Reader, data: Mapping[str, Any]) -> dict[str, Any]:
    """The [options] given, as `ServeConfig` fields (those not given keep their defaults)."""
    raw = data.get("options")
    if not isinstance(raw, dict) or "control-socket" not in raw:
        return r.numbers(data, "options", _OPTIONS)
    raw = dict(raw)
    value = raw.pop("control-socket")
    if not isinstance(value, str) or not value:
        raise r.fail("[options] control-socket must be a path (a string)",
                     r.where.find(r"\[\s*options\s*\]", "control-socket"))
    return {**r.numbers({**data, "options": raw}, "options", _OPTIONS),
            "control_socket": r.file_path(value)}


def _keyfile_keys(r: Reader, data: Mapping[str, Any]) -> dict[dns.name.Name, dns.tsig.Key]:
    """The TSIG keys of the BIND key files `tsig-keyfile` names."""
    keys: dict[dns.name.Name, dns.tsig.Key] = {}
    if "tsig-keyfile" not in data:
        return keys
    line = r.where.find(None, "tsig-keyfile")
    for item in r.string_list(data["tsig-keyfile"], "tsig-keyfile", line):
        if not isinstance(item, str) or not item:
            raise r.fail("tsig-keyfile must be a path or a list of paths", line)
        kpath = r.file_path(item)
        try:
            with open(kpath, encoding="utf-8") as f:
                ktext = f.read()
        except FileNotFoundError:
            raise r.fail(f"tsig-keyfile {item!r}: no such file", line) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise r.fail(f"tsig-keyfile {item!r}: cannot read it ({exc})", line) from None
        for name, key in parse_bind_keys(ktext, kpath).items():
            if name in keys:
                raise r.fail(f"key {name} defined twice (in {kpath})", line)
            keys[name] = key
    return keys


def _table_keys(r: Reader, data: Mapping[str, Any],
                keys: dict[dns.name.Name, dns.tsig.Key]) -> None:
    """Add the TSIG keys of the [keys.NAME] tables to `keys`."""
    if "keys" not in data:
        return
    table = r.table(data["keys"], "[keys]", r.where.find(r"\[\s*keys\b", None))
    for name, body in table.items():
        header = rf"\[\s*keys\s*\.\s*[\"']?{re.escape(name)}[\"']?\s*\]"
        hline = r.where.find(header, None)
        body = r.table(body, f"keys.{name}", hline)
        r.unknown(body, ("algorithm", "secret"), f"[keys.{name}]", header)
        for needed in ("algorithm", "secret"):
            if not isinstance(body.get(needed), str):
                raise r.fail(f"keys.{name}: {needed} must be given as a string", hline)
        try:
            key = make_key(name, body["algorithm"], body["secret"])
        except ValueError as exc:
            what = "secret" if "secret" in str(exc) else "algorithm"
            raise r.fail(str(exc), r.where.find(header, what) or hline) from None
        if key.name in keys:
            raise r.fail(f"key {key.name} defined twice", hline)
        keys[key.name] = key


def _zone(r: Reader, zname: str, body: Any,
          keys: Mapping[dns.name.Name, dns.tsig.Key]) -> ZoneConfig:
    """One [zones."NAME"] table."""
    header = _zone_header(zname)
    hline = r.where.find(header, None)
    where = f'zones."{zname}"'
    nested = isinstance(body, dict) and any(isinstance(v, dict) for k, v in body.items()
                                            if k != "parent-check")
    if nested and "file" not in body:
        raise r.fail(f"zone table [zones.{zname}] has no file: quote zone names, "
                     f'as in [zones."{zname}.example."]', hline)
    body = r.table(body, where, hline)
    r.unknown(body, ("file", "allow-transfer", "also-notify", "allow-unsigned", "allow-update",
                     "parent-check", *INLINE_KEYS),
              f"[{where}]", header)
    try:
        origin = dns.name.from_text(zname)
    except dns.exception.DNSException as exc:
        raise r.fail(f"bad zone name {zname!r}: {exc}", hline) from None
    inline = inline_settings(r, body, where, header, hline)
    zfile = body.get("file") if inline is None else inline[0]
    if not isinstance(zfile, str) or not zfile:
        raise r.fail(f"{where}: file must be given (the signed zone file)",
                     r.where.find(header, "file") or hline)
    acl = _allow_transfer(r, body, where, r.where.find(header, "allow-transfer") or hline, keys)
    updaters = _allow_transfer(r, body, where, r.where.find(header, "allow-update") or hline,
                               keys, "allow-update")
    line = r.where.find(header, "also-notify") or hline
    items = r.string_list(body.get("also-notify", []), f"{where}.also-notify", line)
    targets = tuple(_notify_target(r, item, where, header, line, keys) for item in items)
    insecure = body.get("allow-unsigned", False)
    if not isinstance(insecure, bool):
        raise r.fail(f"{where}.allow-unsigned must be true or false",
                     r.where.find(header, "allow-unsigned") or hline)
    parent = None
    if "parent-check" in body:
        pline = r.where.find(header, "parent-check") or hline
        if inline is None:
            raise r.fail(f"{where}.parent-check needs a zone the server signs (policy)", pline)
        parent = parse_settings(r, body["parent-check"], where, pline, keys)
    if inline is not None:
        return ZoneConfig(origin, zfile, acl, targets, insecure, inline[1], inline[2],
                          inline[3], allow_update=updaters, parent_check=parent)
    return ZoneConfig(origin, r.file_path(zfile), acl, targets, insecure, allow_update=updaters)


def _allow_transfer(r: Reader, body: Mapping[str, Any], where: str, line: int | None,
                    keys: Mapping[dns.name.Name, dns.tsig.Key], what: str = "allow-transfer",
                    ) -> Acl:
    """An address/key match list (`what`: allow-transfer or allow-update)."""
    entries = r.string_list(body.get(what, []), f"{where}.{what}", line)
    if not all(isinstance(e, str) for e in entries):
        raise r.fail(f"{where}.{what} must be a list of strings", line)
    try:
        acl = Acl.parse(entries)
    except ValueError as exc:
        raise r.fail(f"{where}.{what}: {exc}", line) from None
    for k in acl.keys:
        if k not in keys:
            raise r.fail(f"{where}.{what}: no TSIG key {k.to_text(True)!r} is defined", line)
    return acl


def _notify_target(r: Reader, item: Any, where: str, header: str, line: int | None,
                   keys: Mapping[dns.name.Name, dns.tsig.Key]) -> NotifyTarget:
    """One also-notify entry: "ADDR[#PORT]", or { address = ..., key = ... }."""
    key_name: dns.name.Name | None = None
    if isinstance(item, dict):
        r.unknown(item, ("address", "key"), f"{where}.also-notify entry", header)
        addr_text = item.get("address")
        if "key" in item:
            if not isinstance(item["key"], str):
                raise r.fail(f"{where}.also-notify: key must be a key name", line)
            key_name = key_ref(r, item["key"], f"{where}.also-notify", line, keys)
    else:
        addr_text = item
    if not isinstance(addr_text, str):
        raise r.fail(f"{where}.also-notify entries are \"ADDR[#PORT]\" or "
                     "{ address = \"ADDR[#PORT]\", key = \"NAME\" }", line)
    try:
        address = parse_listen(addr_text)
    except InputError as exc:
        raise r.fail(f"{where}.also-notify: {exc.message}", line) from None
    return NotifyTarget(address, key_name)


def _listens(r: Reader, data: Mapping[str, Any], names: Sequence[dns.name.Name],
             ) -> tuple[ListenConfig, ...]:
    """The [[listen]] tables; without any, every zone on `DEFAULT_LISTEN`."""
    items = data.get("listen", [])
    if not isinstance(items, list):
        raise r.fail("listen must be an array of tables: [[listen]]",
                     r.where.find(None, "listen") or r.where.find(r"\[\s*listen\s*\]", None))
    listens: list[ListenConfig] = []
    seen: dict[ListenAddress, int] = {}
    for n, body in enumerate(items):
        hline = r.where.find(r"\[\[\s*listen\s*\]\]", None, n)
        body = r.table(body, f"listen #{n + 1}", hline)
        where = f"[[listen]] #{n + 1}"
        r.unknown(body, ("address", "zones"), where, r"\[\[\s*listen\s*\]\]")
        addr_text = body.get("address")
        if not isinstance(addr_text, str):
            raise r.fail(f"{where}: address must be given as \"ADDR[#PORT]\"", hline)
        try:
            address = parse_listen(addr_text)
        except InputError as exc:
            raise r.fail(f"{where}: {exc.message}", hline) from None
        if address in seen:
            raise r.fail(f"{where}: address {address} is already listed in [[listen]] "
                         f"#{seen[address] + 1}", hline)
        seen[address] = n
        served = names if "zones" not in body else _listen_zones(
            r, body["zones"], where, hline, names)
        listens.append(ListenConfig(address, tuple(served)))
    if not listens:
        listens.append(ListenConfig(parse_listen(DEFAULT_LISTEN), tuple(names)))
    return tuple(listens)


def _listen_zones(r: Reader, value: Any, where: str, hline: int | None,
                  names: Sequence[dns.name.Name]) -> list[dns.name.Name]:
    served = []
    for z in r.string_list(value, f"{where}.zones", hline):
        try:
            zn = dns.name.from_text(z) if isinstance(z, str) else None
        except dns.exception.DNSException:
            zn = None
        if zn is None or zn not in names:
            raise r.fail(f"{where}: zone {z!r} is not defined in [zones]", hline)
        served.append(zn)
    return served
