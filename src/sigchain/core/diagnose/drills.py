"""The lab's failure drills (pure): which drills exist, what each breaks and the cause
`diagnose` must name for it, and the record of an active drill (drills/active.json) that
`lab repair` reads to know what to undo."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import dns.exception
import dns.name

from sigchain.core.lab import hierarchy
from sigchain.errors import InputError

DAY = 86400
EXPIRED_AGO = 10 * DAY  # expired-rrsig: the signatures ran out this long ago


@dataclass(frozen=True)
class Drill:
    name: str
    about: str
    cause: str  # what `diagnose` names while the drill runs
    zone_drill: bool  # breaks one signed zone (--zone); else the resolver's path or anchor
    probe: str  # a name whose validation the drill breaks, {zone} filled in
    cd_data: bool = True  # whether the resolver still returns the data with CD

    def probe_name(self, zone: str) -> str:
        return self.probe.format(zone=zone)


DRILLS: dict[str, Drill] = {d.name: d for d in (
    Drill("broken-ds", "the zone is re-signed with a new KSK: the DS at the parent now names a "
          "KSK the zone no longer serves", "DS_MISMATCH", True, "www.{zone}"),
    Drill("expired-rrsig", f"re-signing stalled: the zone is served (serve --force) with "
          f"signatures that expired {EXPIRED_AGO // DAY} days ago", "RRSIG_EXPIRED", True,
          "www.{zone}"),
    Drill("stale-anchor", "the resolver is configured with a retired root key as its trust "
          "anchor", "TRUST_ANCHOR_STALE", False, "www.{zone}"),
    Drill("stripping-middlebox", "the resolver forwards through a proxy that drops RRSIG and "
          "DNSKEY records; repair points it at the DNSSEC-transparent forwarder behind it",
          "RRSIGS_STRIPPED", False, "www.{zone}"),
    Drill("small-edns", "the resolver forwards through a proxy that cuts UDP answers at 512 "
          "bytes without setting TC (a denial with NSEC3 proofs is larger)", "EDNS_TRUNCATION",
          False, "no-such-name.{zone}", cd_data=False),
)}

# The middlebox drills: the proxy's mode and address, and the plain forwarder behind it.
PROXIES = {"stripping-middlebox": ("strip", "127.53.9.1"), "small-edns": ("small", "127.53.9.2")}
FORWARDER = "127.53.9.10"
FORWARDER_NAME = "drill-forwarder"
PROXY_NAME = "drill-proxy"
FORWARD_MARK = "\n# sigchain lab drill: forward everything to"


def forward_zone(address: str) -> str:
    """The clause that makes the lab's Unbound forward everything to `address` (it still
    validates: the anchor and module-config stay)."""
    return (f"{FORWARD_MARK} {address}\n"
            f'forward-zone:\n\tname: "."\n\tforward-addr: {address}@{hierarchy.PORT}\n')


def sigchain_forward(text: str, address: str | None) -> str:
    """sigchain's resolver config (TOML) with its top-level `forward` set to `address` for
    every name (replacing an earlier drill's), or (None) without one: it resolves by itself.
    The line goes before the first table, where TOML keeps top-level keys."""
    lines = text.splitlines(keepends=True)
    kept = [line for i, line in enumerate(lines)
            if not line.startswith(FORWARD_MARK.strip()) and not (
                i and lines[i - 1].startswith(FORWARD_MARK.strip()))]
    if address is None:
        return "".join(kept)
    at = next((i for i, line in enumerate(kept) if line.startswith("[")), len(kept))
    clause = [f"{FORWARD_MARK.strip()} {address}\n", f'forward = ".={address}#{hierarchy.PORT}"\n']
    return "".join(kept[:at] + clause + kept[at:])


def sigchain_anchor(text: str, current: str, anchor: str) -> str | None:
    """sigchain's resolver config with its static `anchor` file `current` replaced by
    `anchor`; None when the config does not name `current` (not the lab's config)."""
    line = f'anchor = "{current}"'
    if line not in text.splitlines():
        return None
    return text.replace(line, f'anchor = "{anchor}"')


def forwarder_conf(paths: hierarchy.LabPaths) -> str:
    """A plain (non-validating) iterating Unbound on FORWARDER: DNSSEC-transparent, it hands
    on RRSIGs and DNSKEYs as the authoritative servers send them."""
    d = paths.path("drills")
    return f"""\
# sigchain lab drill: DNSSEC-transparent forwarder (no validation) on {FORWARDER}
server:
\tusername: ""
\tchroot: ""
\tdirectory: "{d}"
\tpidfile: "{d}/forwarder.pid"
\tuse-syslog: no
\tlogfile: ""
\tinterface: {FORWARDER}
\tport: {hierarchy.PORT}
\tinterface-automatic: no
\tdo-ip6: no
\taccess-control: 127.0.0.0/8 allow
\tdo-not-query-localhost: no
\tlocal-zone: "test." nodefault
\troot-hints: "{paths.path('root.hints')}"
\tmodule-config: "iterator"
\tcache-max-ttl: {hierarchy.TTL}
\tnum-threads: 1

remote-control:
\tcontrol-enable: yes
\tcontrol-interface: "{d}/forwarder.ctl"
\tcontrol-use-cert: no
"""

DEFAULT_ZONE = "example.test."


def drill(name: str) -> Drill:
    found = DRILLS.get(name)
    if found is None:
        raise InputError(f"unknown drill {name!r} (one of {', '.join(DRILLS)})")
    return found


def drill_zone(d: Drill, zone: str | None) -> hierarchy.LabZone:
    """The lab zone a drill works on: a signed zone below the root (for zone drills)."""
    try:
        z = hierarchy.zone(dns.name.from_text(zone or DEFAULT_ZONE))
    except dns.exception.DNSException as exc:
        raise InputError(f"bad zone {zone!r}: {exc}") from None
    if d.zone_drill and (not z.signed or z.parent is None or z.broken_ds):
        good = [x.name.to_text() for x in hierarchy.ZONES
                if x.signed and x.parent is not None and not x.broken_ds]
        raise InputError(f"drill {d.name} needs a signed, correctly delegated lab zone "
                         f"({', '.join(good)}), not {z.name}")
    return z


@dataclass(frozen=True)
class Active:
    """The drill that runs: its name and zone, when it started, what it changed and the
    backups (original path → copy) repair puts back."""

    name: str
    zone: str
    started: int
    changed: tuple[str, ...] = ()
    backups: Mapping[str, str] = field(default_factory=dict)
    restart: tuple[str, ...] = ()  # lab processes restarted differently (to restart as before)
    signature: str | None = None  # the zone's SOA RRSIG before the drill (served again on repair)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "zone": self.zone, "started": self.started,
                "changed": list(self.changed), "backups": dict(self.backups),
                "restart": list(self.restart), "signature": self.signature}

    @classmethod
    def from_json(cls, data: object, where: str) -> Active:
        try:
            assert isinstance(data, dict)
            return cls(str(data["name"]), str(data["zone"]), int(data["started"]),
                       tuple(map(str, data.get("changed", ()))),
                       {str(k): str(v) for k, v in data.get("backups", {}).items()},
                       tuple(map(str, data.get("restart", ()))),
                       None if data.get("signature") is None else str(data["signature"]))
        except (AssertionError, KeyError, TypeError, ValueError, AttributeError):
            raise InputError("not a drill record", file=where) from None
