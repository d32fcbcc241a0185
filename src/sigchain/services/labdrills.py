"""`sigchain lab drill|repair`: inject a failure into the running lab (the catalogue is
`core.diagnose.drills`), keep what was changed in DIR/drills/active.json, and undo it.
The drills apply to both lab validators, Unbound and sigchain's resolver (when it runs); each
drill and repair empties both caches (Unbound: reload; sigchain's: SIGHUP) so it shows at once."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype

from sigchain.clock import SYSTEM, Clock
from sigchain.core.diagnose import drills as catalogue
from sigchain.core.diagnose.drills import (
    EXPIRED_AGO,
    FORWARDER,
    FORWARDER_NAME,
    PROXIES,
    PROXY_NAME,
    Active,
    Drill,
    drill,
    drill_zone,
)
from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.lab import hierarchy
from sigchain.core.lab.hierarchy import LabZone
from sigchain.core.resolve.exchange import Query
from sigchain.core.validate.anchors import Server
from sigchain.edge import keystore, processes, transport, zonefile
from sigchain.errors import InputError, OperationalError, UnsafeRefused
from sigchain.model.keys import KeyRole
from sigchain.services import labkeys, signing
from sigchain.services.lab import Lab

SERVE_WAIT = 30.0
SIGCHAIN = hierarchy.SIGCHAIN_RESOLVER[0]


def soa_signature(z: LabZone, timeout: float) -> str | None:
    """The RRSIG over the zone's SOA as its server serves it now (None: no answer)."""
    server = Server(z.address, hierarchy.PORT)
    try:
        r = transport.ask(server, Query(z.name, dns.rdatatype.SOA, (server,)).message(),
                          timeout).message
    except (dns.exception.DNSException, OSError, EOFError):
        return None
    sigs = sorted(rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.RRSIG
                  for rd in rrset)
    return " ".join(sigs) or None


class Drills:
    """The drills of one lab directory."""

    def __init__(self, directory: str, clock: Clock = SYSTEM):
        self.lab = Lab(directory, clock=clock)
        self.paths = self.lab.paths
        self.clock = clock
        self.record = self.paths.path("drills", "active.json")
        self.sigchain_conf = self.paths.path(hierarchy.RESOLVER_CONFIGS[SIGCHAIN])

    def path(self, *parts: str) -> str:
        return self.paths.path("drills", *parts)

    def active(self) -> Active | None:
        try:
            with open(self.record, encoding="utf-8") as f:
                return Active.from_json(json.load(f), self.record)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable drill record: {exc}", file=self.record) from None

    def _check_lab(self) -> None:
        if not self.lab.exists:
            raise InputError(f"no lab in {self.paths.root} (run: sigchain lab up --dir "
                             f"{self.paths.root})")
        self.lab._need_root("drill")
        if self.lab.state.resolver != "unbound" or not self.lab._proc_alive("unbound"):
            raise OperationalError("the drills need the lab's Unbound running: sigchain lab up "
                                   f"--dir {self.paths.root} --resolver unbound")

    # ---- drill -------------------------------------------------------------------------------

    def run(self, name: str, zone: str | None) -> dict[str, Any]:
        d = drill(name)
        z = drill_zone(d, zone)
        self._check_lab()
        with self.lab._locked():
            current = self.active()
            if current is not None:
                raise UnsafeRefused(f"drill {current.name} is running on this lab: "
                                    f"sigchain lab repair {current.name} first")
            os.makedirs(self.path("backup"), exist_ok=True)
            now = self.clock.now()
            if name == "stale-anchor":
                active = self._stale_anchor(z, now)
            elif name in PROXIES:
                active = self._middlebox(d, z, now)
            else:
                active = self._resign(d, z, now)
            self._save(active)
            self._flush()
        return self._report(d, active, "drill")

    def _save(self, active: Active) -> None:
        zonefile.write_atomic(self.record, [json.dumps(active.to_json(), indent=2), "\n"])

    def _backup(self, path: str) -> str:
        copy = self.path("backup", os.path.basename(path))
        shutil.copy2(path, copy)
        return copy

    def _resign(self, d: Drill, z: LabZone, now: int) -> Active:
        """broken-ds: sign with a new KSK (the parent's DS names the old one); expired-rrsig:
        sign as if at a time whose signatures have since expired, served with --force."""
        served = self.paths.served(z)
        before = soa_signature(z, 1.0)
        if before is None:
            raise OperationalError(f"the lab server of {z.name} on {z.address} does not answer")
        backups = {served: self._backup(served)}
        keys, inception, restart = self.paths.keys(z), now - hierarchy.SIG_BACKDATE, ()
        if d.name == "broken-ds":
            keys = self._keys_with_new_ksk(z, now)
        else:
            inception = now - EXPIRED_AGO - hierarchy.SIG_VALIDITY
        self._sign(z, keys, now, inception)
        name = hierarchy.server_name(z)
        if d.name == "expired-rrsig":
            self._restart_server(name, force=True)
            restart = (name,)
        else:
            self._hup(name)
        self._wait_served(z, lambda sig: sig is not None and sig != before)
        return Active(d.name, z.name.to_text(), now, (served,), backups, restart, before)

    def _keys_with_new_ksk(self, z: LabZone, now: int) -> str:
        """A key directory with the zone's ZSKs and a KSK the parent has never seen."""
        directory = self.path("keys", z.stem)
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, mode=0o700)
        for path in keystore.zone_key_paths(self.paths.keys(z), z.name):
            if keystore.load_pair(path).dnskey.flags & 1:
                continue  # the KSK the parent's DS names stays out
            base = keystore.key_base(path)
            for ext in (".key", ".private"):
                shutil.copy2(base + ext, directory)
        labkeys.generate(directory, z.name, KeyRole.KSK, now, self.paths.keys(z))  # not even by tag
        return directory

    def _sign(self, z: LabZone, keys: str, now: int, inception: int) -> None:
        """Sign as the lab does; a window already past (expired-rrsig) is forced and not
        verified: publishing it is the point of the drill."""
        expired = inception + hierarchy.SIG_VALIDITY < now
        signing.sign_file(self.paths.unsigned(z), keys, now=now, inception=inception,
                          validity=hierarchy.SIG_VALIDITY, origin=z.name.to_text(),
                          output=self.paths.served(z), denial=labkeys.denial(z), serial="keep",
                          force=expired, verify=not expired)

    def _stale_anchor(self, z: LabZone, now: int) -> Active:
        """Point Unbound's trust-anchor-file (and sigchain's resolver's `anchor`) at the DS of
        a root key that signs nothing."""
        conf = self.paths.path("unbound.conf")
        alg = algorithms.get(hierarchy.ALGORITHM)
        retired = keyfile.make_dnskey(alg, algorithms.generate(alg), KeyRole.KSK.flags)
        stale = self.path("stale-anchor.ds")
        zonefile.write_atomic(stale, [hierarchy.anchor_ds_text(hierarchy.anchor_ds([retired]))])
        with open(conf, encoding="utf-8") as f:
            text = f.read()
        line = f'trust-anchor-file: "{self.paths.path("anchor.ds")}"'
        if line not in text:
            raise OperationalError(f"{conf} does not name the lab's anchor.ds: run lab up first")
        backups = {conf: self._backup(conf)}
        changed = [conf, stale]
        if self._sigchain_alive():
            ours = self._read(self.sigchain_conf)
            staled = catalogue.sigchain_anchor(ours, self.paths.path("anchor.ds"), stale)
            if staled is None:
                raise OperationalError(f"{self.sigchain_conf} does not name the lab's anchor.ds: "
                                       "run lab up first")
            backups[self.sigchain_conf] = self._backup(self.sigchain_conf)
            zonefile.write_atomic(self.sigchain_conf, [staled])
            changed.insert(1, self.sigchain_conf)
        zonefile.write_atomic(conf, [text.replace(line, f'trust-anchor-file: "{stale}"')])
        return Active("stale-anchor", z.name.to_text(), now, tuple(changed), backups)

    def _middlebox(self, d: Drill, z: LabZone, now: int) -> Active:
        """A plain forwarder (if not yet running), the misbehaving proxy in front of it, and
        the lab's validators (Unbound, sigchain's resolver) forwarding everything to the proxy."""
        mode, address = PROXIES[d.name]
        fconf = self.path("forwarder.conf")
        zonefile.write_atomic(fconf, [catalogue.forwarder_conf(self.paths)])
        if not self.lab._proc_alive(FORWARDER_NAME):
            self._start(FORWARDER_NAME, [self.lab.daemons.program("unbound"), "-d", "-c", fconf],
                        fconf, FORWARDER)
        self._start(PROXY_NAME, [self.lab.python, "-m", "sigchain.services.labproxy", mode,
                                 address, FORWARDER, self.paths.root], self.paths.root, address)
        conf = self.paths.path("unbound.conf")
        backups = {conf: self._backup(conf)}
        if self._sigchain_alive():
            backups[self.sigchain_conf] = self._backup(self.sigchain_conf)
        self._forward(address, self.sigchain_conf in backups)
        return Active(d.name, z.name.to_text(), now, tuple(backups), backups, (PROXY_NAME,))

    def _forward(self, address: str | None, sigchain: bool) -> None:
        """Make the lab's validators forward everything to `address` (replacing an earlier
        drill's forward clause), or (None) resolve by themselves again: Unbound, and
        sigchain's resolver when `sigchain` (decided once per drill: its config backed up)."""
        conf = self.paths.path("unbound.conf")
        text = self._read(conf).split(catalogue.FORWARD_MARK, 1)[0].rstrip("\n") + "\n"
        clause = catalogue.forward_zone(address) if address is not None else ""
        zonefile.write_atomic(conf, [text + clause])
        if sigchain:
            ours = self._read(self.sigchain_conf)
            zonefile.write_atomic(self.sigchain_conf, [catalogue.sigchain_forward(ours, address)])

    @staticmethod
    def _read(path: str) -> str:
        with open(path, encoding="utf-8") as f:
            return f.read()

    def _start(self, name: str, cmd: list[str], marker: str, address: str) -> None:
        if self.lab._proc_alive(name):
            self.lab._stop(name)
        self.lab.spawn(name, cmd, marker, address, "drill")
        self.lab.daemons.wait_resolver(name, address)

    # ---- repair ------------------------------------------------------------------------------

    def repair(self, name: str) -> dict[str, Any]:
        d = drill(name)
        self._check_lab()
        with self.lab._locked():
            active = self.active()
            if active is None or active.name != name:
                running = f"drill {active.name} is running" if active else "no drill is running"
                raise InputError(f"nothing to repair for {name}: {running}")
            for original, copy in active.backups.items():
                with open(copy, encoding="utf-8") as f:
                    zonefile.write_atomic(original, [f.read()])
            for made in set(active.changed) - set(active.backups):
                if os.path.dirname(made) == self.path():
                    os.unlink(made)  # what the drill itself wrote (only under drills/)
            z = hierarchy.zone(active.zone)
            server = hierarchy.server_name(z)
            if d.name in PROXIES:  # the resolver keeps validating, through a clean path
                alive = self.lab._proc_alive(FORWARDER_NAME)  # (gone after a lab down)
                self._forward(FORWARDER if alive else None,
                              self.sigchain_conf in active.backups)
                self.lab._stop(PROXY_NAME)
            elif d.zone_drill:
                if server in active.restart:
                    self._restart_server(server, force=False)
                else:
                    self._hup(server)
                if active.signature is not None:
                    self._wait_served(z, lambda sig: sig == active.signature)
            self._flush()
            shutil.rmtree(self.path("backup"), ignore_errors=True)
            shutil.rmtree(self.path("keys"), ignore_errors=True)
            os.unlink(self.record)
        return self._report(d, active, "repair")

    # ---- processes -----------------------------------------------------------------------------

    def _hup(self, name: str) -> None:
        rec = self.lab.state.processes.get(name)
        if rec is not None:
            processes.send_signal(rec.pid, rec.marker, signal.SIGHUP)

    def _restart_server(self, name: str, force: bool) -> None:
        """Restart a lab server as it was started, with or without `serve --force`."""
        rec = self.lab.state.processes.get(name)
        if rec is None:
            raise OperationalError(f"the lab has no process {name}: run lab up first")
        cmd = [c for c in rec.cmd if c != "--force"] + (["--force"] if force else [])
        self.lab._stop(name)
        self.lab.spawn(name, cmd, rec.marker, rec.address, rec.kind)

    def _wait_served(self, z: LabZone, done: Callable[[str | None], bool]) -> None:
        """Until the zone's server serves the version wanted, told by its SOA's RRSIG (the
        serial stays, so that `lab up`'s health check still knows the zone)."""
        deadline = self.clock.monotonic() + SERVE_WAIT
        while not done(soa_signature(z, 0.3)):
            if self.clock.monotonic() > deadline:
                raise OperationalError(f"{z.name} on {z.address} does not serve the new version "
                                       f"after {SERVE_WAIT:.0f}s; see {self.paths.log(hierarchy.server_name(z))}")
            self.clock.sleep(0.1)

    def _sigchain_alive(self) -> bool:
        return self.lab._proc_alive(SIGCHAIN)

    def _flush(self) -> None:
        """Both validators start over: Unbound (and a drill forwarder) reloaded, sigchain's
        resolver sent SIGHUP (it re-reads its config and empties its cache)."""
        self._reload_unbound()
        if self._sigchain_alive():  # waits for its "re-read; cache flushed" (as lab up does)
            self.lab.daemons.flush_sigchain(self.lab.state.processes[SIGCHAIN])

    def _reload_unbound(self) -> None:
        """`unbound-control reload`: re-reads the config and trust anchor, empties the cache;
        the same for a drill forwarder behind it (its cache would hide the change)."""
        control = self.lab.daemons.program("unbound-control")
        confs = [self.paths.path("unbound.conf")]
        if self.lab._proc_alive(FORWARDER_NAME):
            confs.insert(0, self.path("forwarder.conf"))
        for conf in confs:
            proc = processes.run_tool([control, "-c", conf, "reload"])
            if proc.returncode != 0:
                raise OperationalError(f"unbound-control -c {conf} reload failed: "
                                       f"{(proc.stderr or proc.stdout).strip()}")

    def _report(self, d: Drill, active: Active, what: str) -> dict[str, Any]:
        zone = dns.name.from_text(active.zone).to_text(omit_final_dot=True)
        resolvers = {"unbound": hierarchy.RESOLVERS["unbound"]}
        if self._sigchain_alive():
            resolvers[SIGCHAIN] = hierarchy.SIGCHAIN_RESOLVER[1]
        return {"drill": d.name, "action": what, "about": d.about, "zone": active.zone,
                "changed": list(active.changed), "restarted": list(active.restart),
                "expected_cause": d.cause, "probe": d.probe_name(zone), "cd_data": d.cd_data,
                "resolver": hierarchy.RESOLVERS["unbound"], "resolvers": resolvers,
                "flushed": [*resolvers] + ([FORWARDER_NAME] if self.lab._proc_alive(FORWARDER_NAME)
                                           else [])}
