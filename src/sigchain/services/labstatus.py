"""`sigchain lab status`: what the lab directory holds and runs, read from its files, its
state and (if asked) each running server's SOA answer."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdatatype

from sigchain.core.dnssec import ds
from sigchain.core.lab import hierarchy
from sigchain.core.lab.hierarchy import LabPaths, LabZone
from sigchain.core.lab.state import LabState
from sigchain.edge import keystore, zonefile
from sigchain.errors import SigchainError
from sigchain.model.keys import FLAG_SEP


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(paths: LabPaths, state: LabState, alive: Callable[[str], bool], now: int,
           probe: bool = True) -> dict[str, Any]:
    """Each zone, its server, keys, DS at the parent, earliest signature expiry; each
    process and whether it runs (`alive`). `probe` asks each running server for its SOA."""
    served: dict[dns.name.Name, zonefile.LoadedZone | None] = {}
    for z in hierarchy.ZONES:
        try:
            served[z.name] = zonefile.load_zone(paths.served(z), z.name.to_text())
        except SigchainError:
            served[z.name] = None
    zones = []
    for z in hierarchy.ZONES:
        entry: dict[str, Any] = {
            "zone": z.name.to_text(), "about": z.about, "denial": z.denial.value,
            "server": z.address, "parent": z.parent.to_text() if z.parent else None,
        }
        dnskeys = []
        keys = []
        if z.signed and os.path.isdir(paths.keys(z)):
            try:
                for path in keystore.zone_key_paths(paths.keys(z), z.name):
                    _, _, dnskey = keystore.load_public(path)
                    dnskeys.append(dnskey)
                    keys.append({"key_tag": dns.dnssec.key_id(dnskey),  # type: ignore[arg-type]
                                 "role": "ksk" if dnskey.flags & FLAG_SEP else "zsk",  # type: ignore[attr-defined]
                                 "algorithm": dnskey.algorithm})  # type: ignore[attr-defined]
            except (SigchainError, OSError) as exc:
                entry["keys_error"] = str(exc)  # e.g. not root: the key directory is 0700
        entry["keys"] = keys
        loaded = served[z.name]
        entry["serial"] = None
        entry["earliest_expiry"] = None
        if loaded is not None:
            for rds in loaded.nodes.get(z.name, []):
                if rds.rdtype == dns.rdatatype.SOA:
                    entry["serial"] = rds[0].serial  # type: ignore[attr-defined]
            times = hierarchy.signature_times(loaded.nodes)
            if times is not None:
                entry["earliest_expiry"] = iso(times.expiration)
                entry["earliest_expiry_epoch"] = times.expiration
                entry["resign_due"] = hierarchy.past_half_validity(times, now)
        entry["ds_at_parent"] = _parent_ds(z, state, served, dnskeys)
        name = hierarchy.server_name(z)
        rec = state.processes.get(name)
        entry["server_pid"] = rec.pid if rec else None
        entry["server_running"] = alive(name)
        if probe and entry["server_running"]:
            entry["answering_serial"] = soa_serial(z, 0.5)
        zones.append(entry)
    procs = []
    for name, rec in sorted(state.processes.items()):
        procs.append({"name": name, "pid": rec.pid, "address": rec.address,
                      "kind": rec.kind, "running": alive(name), "log": rec.log})
    resolver = state.resolver
    return {
        "dir": paths.root,
        "resolver": resolver,
        "resolver_address": hierarchy.RESOLVERS.get(resolver or ""),
        "anchor": list(state.anchor),
        "zones": zones,
        "processes": procs,
        "running": bool(procs) and all(p["running"] for p in procs),
        "added_addresses": list(state.added_addresses),
    }

def _parent_ds(z: LabZone, state: LabState, served: dict[dns.name.Name, Any],
               dnskeys: list[Any]) -> list[dict[str, Any]]:
    if z.parent is None:  # the root: its DS is the trust anchor
        rds_list = [ln.split() for ln in state.anchor]
        out = []
        for t in rds_list:
            rd = dns.rdata.from_text("IN", "DS", " ".join(t[4:]))
            out.append(_ds_entry(z, rd, dnskeys, where="trust anchor"))
        return out
    parent = served.get(z.parent)
    if parent is None:
        return []
    for rds in parent.nodes.get(z.name, []):
        if rds.rdtype == dns.rdatatype.DS:
            return [_ds_entry(z, rd, dnskeys, where=z.parent.to_text()) for rd in rds]
    return []


def _ds_entry(z: LabZone, rd: Any, dnskeys: list[Any], where: str) -> dict[str, Any]:
    return {"key_tag": rd.key_tag, "algorithm": rd.algorithm, "digest_type": rd.digest_type,
            "matches_key": any(ds.ds_matches(z.name, rd, k) for k in dnskeys), "at": where}


def soa_serial(z: LabZone, timeout: float) -> int | None:
    q = dns.message.make_query(z.name, dns.rdatatype.SOA)
    q.flags &= ~dns.flags.RD
    try:
        r = dns.query.udp(q, z.address, port=hierarchy.PORT, timeout=timeout)
    except (dns.exception.DNSException, OSError):
        return None
    if r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    return int(r.answer[0][0].serial)  # type: ignore[attr-defined]
