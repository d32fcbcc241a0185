"""`sigchain keys submit-ds`: push the DS RRset the key state wants to the parent, by an RFC
2136 UPDATE (TSIG-signed; the zone's DS RRset replaced in one atomic message) to the parent's
primary, or by a hook command (a registrar's API or EPP client) fed the set on stdin. Nothing
is recorded as seen: only the parent check (`keys checkds`) or the operator says that."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DS
import dns.rrset
import dns.tsig
import dns.update
from dns.rdatatype import RdataType

from sigchain.core.parent.wanted import Wanted, ds_lines, wanted_ds
from sigchain.core.validate.anchors import Server
from sigchain.edge import transport
from sigchain.errors import InputError, OperationalError, UnsafeRefused
from sigchain.services import keymanager, parentcheck, tsigkeys

HOOK_TIMEOUT = 120.0  # seconds a hook may take


@dataclass(frozen=True)
class Submission:
    wanted: tuple[Wanted, ...]
    lines: tuple[str, ...]
    how: str  # "update to ADDR (parent zone P)" | "hook"
    ttl: int


def wanted_now(zone: dns.name.Name, directory: str, now: int
               ) -> tuple[tuple[Wanted, ...], int, bool]:
    """The DS the parent should hold now, by the stored policy, the DS TTL it declares, and
    whether the policy goes insecure (an empty set is then what it wants)."""
    state, policy = keymanager.stored_zone(zone, directory)
    keys = [(sk.key, sk.tag, dnskey) for sk, dnskey in keymanager.ds_keys(directory, state)]
    wanted = wanted_ds(zone, keys, policy.cds_digest_types, now)  # type: ignore[arg-type]
    return wanted, policy.parent_ds_ttl, policy.insecure


def _refuse_empty(zone: dns.name.Name, wanted: tuple[Wanted, ...], force: bool) -> None:
    if not wanted and not force:
        raise UnsafeRefused(f"no key of {zone} is in its CDS window now: submitting an empty DS "
                            "set would make the zone insecure (--force to do it anyway, or a "
                            "policy with insecure = true)")


def load_tsig(path: str) -> dns.tsig.Key:
    """The one TSIG key of a BIND key file (as tsig-keygen writes it)."""
    found = tsigkeys.parse_bind_keys(_read(path), path)
    if len(found) != 1:
        raise InputError(f"expected exactly one key statement, found {len(found)}", file=path)
    return next(iter(found.values()))


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=path) from None
    except UnicodeDecodeError:
        raise InputError("not a text file", file=path) from None


def parent_zone_of(zone: dns.name.Name, server: Server) -> dns.name.Name:
    """The zone the primary holds the DS in: the signer or SOA owner of its DS answer (as
    nsupdate finds the zone from the SOA), else the name one label up."""
    try:
        m = parentcheck.ask_tcp(server, zone, RdataType.DS)
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        raise OperationalError(f"parent primary {server}: {transport.describe(exc)}") from None
    for r in list(m.answer) + list(m.authority):
        if r.rdtype == RdataType.SOA and zone.is_subdomain(r.name) and r.name != zone:
            return r.name
        if r.rdtype == RdataType.RRSIG and r.covers == RdataType.DS:
            return r[0].signer  # type: ignore[attr-defined,no-any-return]
    return zone.parent()


def send_update(zone: dns.name.Name, server: Server, wanted: tuple[Wanted, ...], ttl: int,
                key: dns.tsig.Key | None) -> dns.name.Name:
    """Replace the zone's DS RRset at the parent's primary in one UPDATE; the parent zone.
    Anything but NOERROR is an operational failure naming the rcode."""
    parent = parent_zone_of(zone, server)
    update = dns.update.UpdateMessage(parent, keyring=key)
    update.delete(zone, RdataType.DS)
    for w in wanted:
        for d in w.ds:
            update.add(zone, ttl, d)
    try:
        reply = dns.query.tcp(update, server.host, port=server.port,
                              timeout=parentcheck.TIMEOUT)
    except dns.tsig.PeerError as exc:
        raise OperationalError(f"parent primary {server} rejected the UPDATE's TSIG: "
                               f"{type(exc).__name__}") from None
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        raise OperationalError(f"UPDATE to {server}: {transport.describe(exc)}") from None
    if reply.rcode() != dns.rcode.NOERROR:
        raise OperationalError(f"parent primary {server} answered the UPDATE of {zone} DS in "
                               f"{parent} with {dns.rcode.to_text(reply.rcode())}")
    return parent


def run_hook(zone: dns.name.Name, command: str, wanted: tuple[Wanted, ...], ttl: int,
             now: int) -> None:
    """Run `command` (by /bin/sh) with the wanted set as JSON on stdin, the DS lines in it
    and in $DS_TEXT, and $ZONE and $ACTION ("replace", or "delete" for an empty set); its exit
    status decides."""
    lines = ds_lines(zone, wanted)
    action = "replace" if wanted else "delete"
    doc = {"zone": zone.to_text(), "action": action, "now": now, "ttl": ttl,
           "text": "".join(line + "\n" for line in lines),
           "keys": [{"id": w.key_id, "tag": w.tag,
                     "ds": [{"key_tag": d.key_tag, "algorithm": d.algorithm,
                             "digest_type": d.digest_type, "digest": d.digest.hex().upper()}
                            for d in w.ds]} for w in wanted]}
    env = {**os.environ, "ZONE": zone.to_text(), "ACTION": action,
           "DS_TEXT": "\n".join(lines)}
    try:
        proc = subprocess.run(["/bin/sh", "-c", command], input=json.dumps(doc, indent=2),
                              capture_output=True, text=True, env=env, timeout=HOOK_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise OperationalError(f"hook did not finish within {HOOK_TIMEOUT:g} s: "
                               f"{command}") from None
    except OSError as exc:
        raise OperationalError(f"cannot run the hook: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]
        raise OperationalError(f"hook exited {proc.returncode}"
                               + (f": {said[0]}" if said else "") + f" ({command})")


def submit(zone: dns.name.Name, directory: str, now: int, *, update: Server | None = None,
           tsig: dns.tsig.Key | None = None, hook: str | None = None,
           force: bool = False) -> Submission:
    """Push the wanted DS set one way or the other."""
    wanted, ttl, insecure = wanted_now(zone, directory, now)
    _refuse_empty(zone, wanted, force or insecure)
    lines = tuple(ds_lines(zone, wanted))
    if update is not None:
        parent = send_update(zone, update, wanted, ttl, tsig)
        return Submission(wanted, lines, f"UPDATE to {update} (zone {parent})", ttl)
    assert hook is not None
    run_hook(zone, hook, wanted, ttl, now)
    return Submission(wanted, lines, "hook", ttl)
