"""What `sigchain exporter` probes and how often: from the command line or a TOML file
(errors name the file and line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rrset

from sigchain import tomltext
from sigchain.core.dnssec.timefmt import parse_duration
from sigchain.core.validate.anchors import Server, parse_server
from sigchain.edge.server import ListenAddress, parse_listen
from sigchain.errors import InputError
from sigchain.services.trace import read_anchors

DEFAULT_INTERVAL = 60
DEFAULT_TIMEOUT = 2.0
MIN_INTERVAL = 1


@dataclass(frozen=True)
class ZoneTarget:
    """One zone to watch: its servers (listed, and/or found from its NS), the parent servers
    whose DS is compared, the resolvers asked for AD, and whether to AXFR the whole zone."""

    zone: dns.name.Name
    servers: tuple[Server, ...] = ()
    find_servers: bool = False
    axfr: bool = False
    parent_servers: tuple[Server, ...] = ()
    resolvers: tuple[Server, ...] = ()
    interval: int = DEFAULT_INTERVAL
    keys: str | None = None  # the zone's key directory when `sigchain keys` manages it


@dataclass(frozen=True)
class ExporterConfig:
    listen: ListenAddress
    zones: tuple[ZoneTarget, ...] = field(default=())
    timeout: float = DEFAULT_TIMEOUT
    anchors: tuple[dns.rrset.RRset, ...] = ()  # trust anchors for sigchain's own validation


def parse_zone_arg(text: str) -> tuple[dns.name.Name, tuple[Server, ...]]:
    """`ZONE` or `ZONE=SERVER[,SERVER...]` as given to --zone."""
    name, _, servers = text.partition("=")
    zone = _zone_name(name, f"--zone {text!r}")
    listed = tuple(parse_server(s.strip()) for s in servers.split(",") if s.strip())
    return zone, listed


def _zone_name(text: str, where: str) -> dns.name.Name:
    if not text.strip():
        raise InputError(f"bad {where}: no zone name")
    try:
        return dns.name.from_text(text.strip())
    except dns.exception.DNSException as exc:
        raise InputError(f"bad zone name in {where}: {exc}") from None


def interval_seconds(text: str) -> int:
    seconds = parse_duration(text)
    if seconds < MIN_INTERVAL:
        raise InputError(f"interval {text!r} is shorter than {MIN_INTERVAL} s")
    return seconds


def check_target(t: ZoneTarget) -> ZoneTarget:
    if not t.servers and not (t.find_servers and t.parent_servers):
        raise InputError(f"zone {t.zone}: give its servers (ZONE=SERVER,...), or a parent server "
                         "to find them from the delegation")
    return t


def from_flags(listen: str, zones: tuple[str, ...], parent_servers: tuple[str, ...],
               resolvers: tuple[str, ...], interval: str, find_servers: bool, axfr: bool,
               timeout: float, anchor: str | None,
               key_dirs: tuple[str, ...] = ()) -> ExporterConfig:
    parents = tuple(parse_server(s, what="parent server") for s in parent_servers)
    res = tuple(parse_server(s, what="resolver") for s in resolvers)
    every = interval_seconds(interval)
    dirs = dict(_keys_arg(k) for k in key_dirs)
    targets = []
    for z in zones:
        zone, listed = parse_zone_arg(z)
        targets.append(check_target(ZoneTarget(zone, listed, find_servers or not listed, axfr,
                                               parents, res, every, dirs.pop(zone, None))))
    if not targets:
        raise InputError("no zone to probe: give --zone ZONE[=SERVER,...] (or --config FILE)")
    if dirs:
        raise InputError(f"--keys for a zone not given with --zone: {next(iter(dirs))}")
    if anchor and not res:
        raise InputError("--anchor is for validating through a --resolver; none was given")
    anchors = tuple(read_anchors(anchor)) if anchor else ()
    return ExporterConfig(parse_listen(listen), tuple(targets), timeout, anchors)


def _keys_arg(text: str) -> tuple[dns.name.Name, str]:
    """`--keys ZONE=DIR`."""
    zone, sep, directory = text.partition("=")
    if not sep or not zone or not directory:
        raise InputError(f"--keys {text!r}: expected ZONE=DIR (the zone's key directory)")
    return _zone_name(zone, f"--keys {text!r}"), directory


class _Reader:
    """Reads settings of the TOML file; every error names the file and the setting's line."""

    def __init__(self, path: str, text: str):
        self.path, self.where = path, tomltext.Where(text)

    def bad(self, message: str, table: str | None, key: str | None) -> InputError:
        return InputError(message, file=self.path, line=self.where.find(table, key))

    def servers(self, value: Any, what: str, table: str | None, key: str) -> tuple[Server, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.bad(f"{key} must be a list of \"ADDR[#PORT]\" strings", table, key)
        try:
            return tuple(parse_server(v, what=what) for v in value)
        except InputError as exc:
            raise self.bad(str(exc), table, key) from None

    def key_dir(self, value: Any, table: str) -> str | None:
        """`keys = "DIR"`: relative to the config file, as `anchor`."""
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.bad('keys = "DIR" (the zone\'s sigchain key directory)', table, "keys")
        return str(Path(self.path).parent / value)

    def duration(self, value: Any, table: str | None, key: str) -> int:
        try:
            return interval_seconds(str(value))
        except InputError as exc:
            raise self.bad(str(exc), table, key) from None

    def zone(self, name: str, table: Any, defaults: ZoneTarget) -> ZoneTarget:
        """One `[zones."NAME"]` table; unset settings come from `defaults`."""
        header = rf"\[zones\.[\"']?{name.replace('.', '[.]')}[\"']?\]"
        if not isinstance(table, dict):
            raise self.bad(f"zones.{name} must be a table", header, None)
        keys = {"servers", "find-servers", "axfr", "parent-servers", "resolvers", "interval",
                "keys"}
        for key in table:
            if key not in keys:
                raise self.bad(f"unknown setting {key!r} for zone {name}", header, key)
        for flag in ("find-servers", "axfr"):
            if not isinstance(table.get(flag, False), bool):
                raise self.bad(f"{flag} must be true or false", header, flag)
        listed = self.servers(table.get("servers", []), "server", header, "servers")
        target = ZoneTarget(
            _zone_name(name, f"zone table {name!r}"), listed,
            table.get("find-servers", not listed), table.get("axfr", False),
            self.servers(table["parent-servers"], "parent server", header, "parent-servers")
            if "parent-servers" in table else defaults.parent_servers,
            self.servers(table["resolvers"], "resolver", header, "resolvers")
            if "resolvers" in table else defaults.resolvers,
            self.duration(table["interval"], header, "interval")
            if "interval" in table else defaults.interval,
            self.key_dir(table.get("keys"), header))
        try:
            return check_target(target)
        except InputError as exc:
            raise self.bad(str(exc), header, None) from None


def load_config(path: str) -> ExporterConfig:
    """The TOML file: top-level `listen`, `interval`, `timeout`, `parent-servers`,
    `resolvers` (defaults for every zone), `anchor`, and one `[zones."NAME"]` table per zone."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=path) from None
    doc = tomltext.loads(text, path)
    r = _Reader(path, text)
    top = {"listen", "interval", "timeout", "parent-servers", "resolvers", "zones", "anchor"}
    for key in doc:
        if key not in top:
            raise r.bad(f"unknown setting {key!r}", None, key)
    if not isinstance(doc.get("listen"), str):
        raise r.bad("listen = \"ADDR#PORT\" is required", None, "listen")
    try:
        listen = parse_listen(doc["listen"])
    except InputError as exc:
        raise r.bad(str(exc), None, "listen") from None
    timeout = doc.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise r.bad("timeout must be a positive number of seconds", None, "timeout")
    defaults = ZoneTarget(
        dns.name.root, (), False, False,
        r.servers(doc.get("parent-servers", []), "parent server", None, "parent-servers"),
        r.servers(doc.get("resolvers", []), "resolver", None, "resolvers"),
        r.duration(doc.get("interval", DEFAULT_INTERVAL), None, "interval"))
    zones = doc.get("zones", {})
    if not isinstance(zones, dict) or not zones:
        raise r.bad('no zone to probe: add a [zones."NAME"] table', None, None)
    targets = tuple(r.zone(name, table, defaults) for name, table in zones.items())
    anchor = doc.get("anchor")
    if anchor is not None and not isinstance(anchor, str):
        raise r.bad('anchor = "FILE" (DS/DNSKEY records or BIND trust-anchors)', None, "anchor")
    anchors = tuple(read_anchors(str(Path(path).parent / anchor))) if anchor else ()
    return ExporterConfig(listen, targets, float(timeout), anchors)
