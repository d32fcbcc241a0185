"""The lab's state (lab.json) as frozen, typed records: what it started, which addresses it
added to lo, what each zone was built from, the resolver and the trust anchor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sigchain.errors import InputError

STATE_VERSION = 1


@dataclass(frozen=True)
class ProcessRecord:
    """One process the lab started: found again by PID, and known as ours by `marker`."""

    pid: int
    marker: str  # a path on its command line that only this lab uses
    cmd: tuple[str, ...]
    address: str
    kind: str  # "server" or "resolver"
    config: str  # fingerprint of the resolver's config ("" for servers)
    log: str
    started: int

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "marker": self.marker, "cmd": list(self.cmd),
                "address": self.address, "kind": self.kind, "config": self.config,
                "log": self.log, "started": self.started}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        return cls(int(data.get("pid") or 0), str(data.get("marker", "\0")),
                   tuple(data.get("cmd") or ()), str(data.get("address", "")),
                   str(data.get("kind", "")), str(data.get("config", "")),
                   str(data.get("log", "")), int(data.get("started") or 0))


@dataclass(frozen=True)
class ZoneRecord:
    """What a zone's files were last built from (None: rebuild it) and its serial."""

    fingerprint: str | None
    serial: int
    built: int

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "serial": self.serial, "built": self.built}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ZoneRecord:
        return cls(data.get("fingerprint"), int(data.get("serial") or 0), int(data.get("built") or 0))


@dataclass(frozen=True)
class LabState:
    """lab.json. Changes make a new state (`with_*`); the executor saves each one it makes."""

    added_addresses: tuple[str, ...] = ()
    processes: Mapping[str, ProcessRecord] = field(default_factory=dict)
    zones: Mapping[str, ZoneRecord] = field(default_factory=dict)
    resolver: str | None = None
    anchor: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION, "added_addresses": list(self.added_addresses),
            "processes": {k: v.to_json() for k, v in self.processes.items()},
            "zones": {k: v.to_json() for k, v in self.zones.items()},
            "resolver": self.resolver, "anchor": list(self.anchor),
        }

    @classmethod
    def from_json(cls, data: object, file: str | None = None) -> LabState:
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise InputError("lab state of an unknown version", file=file)
        try:
            return cls(
                tuple(data.get("added_addresses") or ()),
                {k: ProcessRecord.from_json(v) for k, v in (data.get("processes") or {}).items()},
                {k: ZoneRecord.from_json(v) for k, v in (data.get("zones") or {}).items() if v},
                data.get("resolver"),
                tuple(data.get("anchor") or ()),
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise InputError(f"unreadable lab state: {exc}", file=file) from None

    def with_process(self, name: str, rec: ProcessRecord) -> LabState:
        return replace(self, processes={**self.processes, name: rec})

    def without_process(self, name: str) -> LabState:
        return replace(self, processes={k: v for k, v in self.processes.items() if k != name})

    def with_address(self, address: str) -> LabState:
        if address in self.added_addresses:
            return self
        return replace(self, added_addresses=(*self.added_addresses, address))

    def without_address(self, address: str) -> LabState:
        return replace(self, added_addresses=tuple(a for a in self.added_addresses if a != address))

    def with_zones(self, built: Mapping[str, ZoneRecord]) -> LabState:
        return replace(self, zones={**self.zones, **built})

    def forget_fingerprints(self) -> LabState:
        """Rebuild every zone next time; serials keep going up."""
        return replace(self, zones={k: replace(v, fingerprint=None) for k, v in self.zones.items()})
