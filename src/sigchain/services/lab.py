"""The lab: the hierarchy of `core.labplan` built, signed and served on loopback by one
`sigchain serve` per address, with a validating Unbound or named in front.

Everything the lab makes lives in one directory: keys, zone files, the trust anchor, the
resolver configs, PID and log files, and `lab.json` — what it started, which addresses it
added to lo, and what each zone was signed from. `up` converges on the requested lab (reusing
keys, re-signing only what changed or is past half its signature validity); `down` stops
what `up` started, by PID, and removes only the addresses it added.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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

from sigchain.clock import SYSTEM, Clock
from sigchain.core.dnssec import algorithms, ds, keyfile
from sigchain.core.lab import labplan
from sigchain.core.lab.labplan import Denial, LabPaths, LabZone
from sigchain.edge import keystore, loopback, processes, zonefile
from sigchain.errors import InputError, OperationalError, SigchainError
from sigchain.model.keys import FLAG_REVOKE, FLAG_SEP, KeyPair, KeyRole, KeyTiming

STATE_VERSION = 1
RESOLVER_CHOICES = ("unbound", "named", "none")
START_TIMEOUT = 30.0
# The Debian package that brings each program the lab runs.
PACKAGES = {
    "ip": "iproute2", "unbound": "unbound", "unbound-control": "unbound",
    "unbound-checkconf": "unbound", "named": "bind9", "named-checkconf": "bind9-utils",
}
RESOLVER_PROGRAMS = {"unbound": ["unbound", "unbound-control"], "named": ["named"]}


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class UpReport:
    directory: str
    resolver: str
    zones: list[dict[str, Any]] = field(default_factory=list)
    servers: list[dict[str, Any]] = field(default_factory=list)
    resolvers: list[dict[str, Any]] = field(default_factory=list)
    added_addresses: list[str] = field(default_factory=list)
    anchor: list[str] = field(default_factory=list)
    anchor_changed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "dir": self.directory, "resolver": self.resolver, "zones": self.zones,
            "servers": self.servers, "resolvers": self.resolvers,
            "added_addresses": self.added_addresses, "anchor": self.anchor,
            "anchor_changed": self.anchor_changed,
            "resolver_address": labplan.RESOLVERS.get(self.resolver),
        }


class Lab:
    """One lab directory. `which` finds peer programs; `clock` gives `now` for signing."""

    def __init__(self, directory: str, *, clock: Clock = SYSTEM,
                 which: Callable[[str], str | None] = processes.find_binary,
                 python: str = sys.executable, euid: Callable[[], int] = os.geteuid):
        self.paths = LabPaths(os.path.abspath(directory))
        self.clock = clock
        self.which = which
        self.python = python
        self.euid = euid
        self._state: dict[str, Any] | None = None

    @property
    def state(self) -> dict[str, Any]:
        """lab.json, read on first use (after the root check, for commands that need root)."""
        if self._state is None:
            self._state = self._load_state()
        return self._state

    # ---- state ---------------------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        empty: dict[str, Any] = {"version": STATE_VERSION, "added_addresses": [], "processes": {},
                                 "zones": {}, "resolver": None}
        try:
            with open(self.paths.state, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return empty
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable lab state: {exc}", file=self.paths.state) from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise InputError("lab state of an unknown version", file=self.paths.state)
        for k, v in empty.items():
            data.setdefault(k, v)
        return data

    def _save_state(self) -> None:
        zonefile.write_atomic(self.paths.state, [json.dumps(self.state, indent=2, sort_keys=True), "\n"])

    @property
    def exists(self) -> bool:
        return os.path.exists(self.paths.state)

    def _proc_alive(self, name: str) -> bool:
        rec = self.state["processes"].get(name)
        return bool(rec) and processes.is_ours(rec.get("pid"), rec.get("marker", "\0"))

    # ---- checks before anything changes ----------------------------------------------------

    def _need_root(self, what: str) -> None:
        if self.euid() != 0:
            raise OperationalError(
                f"lab {what} needs root: the lab serves DNS on port 53 and adds addresses to lo "
                "(run it as root, e.g. with sudo)"
            )

    def _program(self, name: str) -> str:
        path = self.which(name)
        if path is None:
            raise OperationalError(
                f"{name} is not installed (Debian package {PACKAGES.get(name, name)})"
            )
        return path

    def preflight(self, resolver: str) -> None:
        """Root, peer programs and free ports: fail here, before anything starts or changes."""
        if resolver not in RESOLVER_CHOICES:
            raise InputError(f"unknown resolver {resolver!r} (one of {', '.join(RESOLVER_CHOICES)})")
        self._need_root("up")
        wanted = ["ip", *RESOLVER_PROGRAMS.get(resolver, [])]
        missing = [p for p in wanted if self.which(p) is None]
        if missing:
            pkgs = sorted({PACKAGES.get(p, p) for p in missing})
            raise OperationalError(
                f"missing peer program(s): {', '.join(missing)}; install with: "
                f"apt-get install -y {' '.join(pkgs)}"
            )
        held = {rec.get("address") for name, rec in self.state["processes"].items() if self._proc_alive(name)}
        addresses = labplan.server_addresses()
        if resolver in labplan.RESOLVERS:
            addresses.append(labplan.RESOLVERS[resolver])
        problems = [p for a in addresses if a not in held
                    if (p := loopback.port_problem(a, labplan.PORT)) is not None]
        if problems:
            raise OperationalError("cannot bring the lab up: " + "; ".join(problems))

    def _check_directory(self) -> None:
        root = self.paths.root
        if os.path.exists(root) and not os.path.isdir(root):
            raise InputError("not a directory", file=root)
        if os.path.isdir(root) and os.listdir(root) and not self.exists:
            raise InputError(
                "directory is not empty and holds no lab (lab.json): refusing to write into it",
                file=root,
            )
        ctl = self.paths.unbound_control
        if len(ctl.encode()) > 100:
            raise InputError(f"lab directory path too long for Unbound's control socket ({ctl})")

    # ---- keys --------------------------------------------------------------------------------

    def _generate(self, directory: str, origin: dns.name.Name, role: KeyRole, now: int) -> KeyPair:
        alg = algorithms.get(labplan.ALGORITHM)
        used = keystore.existing_tags(directory, origin) if os.path.isdir(directory) else set()
        for _ in range(100):
            private = algorithms.generate(alg)
            dnskey = keyfile.make_dnskey(alg, private, role.flags)
            timing = KeyTiming(created=now, publish=now, activate=now)
            kp = KeyPair(origin, alg.number, dnskey, private, timing)
            revoked = keyfile.make_dnskey(alg, private, role.flags | FLAG_REVOKE)
            revoked_tag = KeyPair(origin, alg.number, revoked, private, timing).key_tag
            if (alg.number, kp.key_tag) not in used and (alg.number, revoked_tag) not in used:
                base = keystore.write_pair(directory, kp, alg)
                return KeyPair(origin, alg.number, dnskey, private, timing, None,
                               os.path.join(directory, base))
        raise OperationalError(f"could not find an unused key tag for {origin}")

    def _zone_keys(self, directory: str, origin: dns.name.Name, roles: tuple[KeyRole, ...],
                   now: int) -> tuple[list[KeyPair], bool]:
        """The keys in `directory` for `origin`, generated (KSK + ZSK) if there are none."""
        if os.path.isdir(directory) and keystore.zone_key_paths(directory, origin):
            return keystore.load_zone_keys(directory, origin), False
        os.makedirs(os.path.dirname(directory), mode=0o700, exist_ok=True)
        return [self._generate(directory, origin, r, now) for r in roles], True

    # ---- zones -------------------------------------------------------------------------------

    def _sign_all(self, zones: list[LabZone], now: int) -> None:
        """Sign with `sigchain sign` (which verifies before it writes: never publish bogus),
        every zone at once: a child's DS needs only its keys, not its signed zone."""
        running = []
        for z in zones:
            cmd = [self.python, "-m", "sigchain", "sign", self.paths.unsigned(z),
                   "--origin", z.name.to_text(), "--keys", self.paths.keys(z),
                   "-o", self.paths.served(z), "--serial", "keep",
                   "--inception", str(now - labplan.SIG_BACKDATE),
                   "--validity", str(labplan.SIG_VALIDITY), "--jitter", str(labplan.SIG_JITTER)]
            if z.denial is not Denial.NSEC:
                cmd.append("--nsec3")
            if z.denial is Denial.NSEC3_OPTOUT:
                cmd.append("--opt-out")
            running.append((z, subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True)))
        failed = []
        for z, proc in running:
            _, err = proc.communicate()
            if proc.returncode != 0:
                failed.append(f"{z.name}: {err.strip() or f'exit {proc.returncode}'}")
        if failed:
            raise OperationalError("signing the lab zones failed: " + "; ".join(failed))

    def _build(self, now: int, report: UpReport) -> set[dns.name.Name]:
        """Keys, zone files and signatures; returns the zones whose served file changed."""
        os.makedirs(self.paths.path("keys"), mode=0o700, exist_ok=True)
        os.chmod(self.paths.path("keys"), 0o700)
        os.makedirs(self.paths.path("zones"), exist_ok=True)
        keys: dict[dns.name.Name, list[KeyPair]] = {}
        new_keys: dict[dns.name.Name, bool] = {}
        child_ds: dict[dns.name.Name, list[Any]] = {}
        both = (KeyRole.KSK, KeyRole.ZSK)
        for z in labplan.ZONES:
            if not z.signed:
                continue
            keys[z.name], new_keys[z.name] = self._zone_keys(self.paths.keys(z), z.name, both, now)
            ksks = [k for k in keys[z.name] if k.is_sep]
            if z.broken_ds:
                # The parent gets the DS of a key the zone never publishes (dnssec-failed.org).
                decoys, _ = self._zone_keys(self.paths.decoy_keys(z), z.name, (KeyRole.KSK,), now)
                ksks = [k for k in decoys if k.is_sep]
            child_ds[z.name] = [ds.make_ds(z.name, k.dnskey, labplan.DS_DIGEST) for k in ksks]

        changed: set[dns.name.Name] = set()
        to_sign: list[LabZone] = []
        built: dict[str, dict[str, Any]] = {}
        outcomes: dict[dns.name.Name, dict[str, Any]] = {}
        for z in labplan.bottom_up():
            name = z.name.to_text()
            zkeys = keys.get(z.name, [])
            fp = labplan.fingerprint(labplan.zone_text(z, 0, child_ds), [k.dnskey for k in zkeys], z.denial)
            prev = self.state["zones"].get(name) or {}
            served = self.paths.served(z)
            reason = None
            if not os.path.exists(served) or not os.path.exists(self.paths.unsigned(z)):
                reason = "new"
            elif prev.get("fingerprint") != fp:
                reason = "new keys" if new_keys.get(z.name) else "changed"
            elif z.signed:
                try:
                    times = labplan.signature_times(zonefile.load_zone(served, name).nodes)
                except SigchainError:
                    times = None
                if times is None:
                    reason = "unreadable"
                elif labplan.past_half_validity(times, now):
                    reason = "past half validity"
            if reason is None:
                outcomes[z.name] = {"zone": name, "action": "kept", "serial": prev.get("serial")}
                continue
            serial = labplan.next_serial(int(prev.get("serial") or 0), now)
            zonefile.write_atomic(self.paths.unsigned(z), [labplan.zone_text(z, serial, child_ds)])
            if z.signed:
                to_sign.append(z)
            action = ("signed" if z.signed else "written") + f" ({reason})"
            if z.signed and reason == "past half validity":
                action = "re-signed (past half validity)"
            built[name] = {"fingerprint": fp, "serial": serial, "built": now}
            changed.add(z.name)
            outcomes[z.name] = {"zone": name, "action": action, "serial": serial}
        self._sign_all(to_sign, now)
        self.state["zones"].update(built)  # only once every file is written
        report.zones = [outcomes[z.name] for z in labplan.ZONES]
        return changed

    def _write_configs(self, report: UpReport) -> dict[str, str]:
        """anchor.ds, anchor.conf, root.hints, unbound.conf, named.conf; returns the texts."""
        root_keys = keystore.load_zone_keys(self.paths.keys(labplan.ROOT), dns.name.root)
        anchors = labplan.anchor_ds([k.dnskey for k in root_keys if k.is_sep])
        texts = {
            "anchor.ds": labplan.anchor_ds_text(anchors),
            "anchor.conf": labplan.anchor_conf_text(anchors),
            "root.hints": labplan.root_hints_text(),
            "unbound.conf": labplan.unbound_conf(self.paths),
            "named.conf": labplan.named_conf(self.paths, anchors),
        }
        for fname, text in texts.items():
            path = self.paths.path(fname)
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() == text:
                        continue
            except OSError:
                pass
            zonefile.write_atomic(path, [text])
        report.anchor = [ln for ln in texts["anchor.ds"].splitlines() if not ln.startswith(";")]
        report.anchor_changed = self.state.get("anchor") != report.anchor
        self.state["anchor"] = report.anchor
        return texts

    # ---- processes ---------------------------------------------------------------------------

    def _record(self, name: str, pid: int, marker: str, cmd: list[str], address: str,
                kind: str, config: str = "") -> None:
        self.state["processes"][name] = {
            "pid": pid, "marker": marker, "cmd": cmd, "address": address, "kind": kind,
            "config": config, "log": self.paths.log(name), "started": self.clock.now(),
        }
        self._save_state()

    def _stop(self, name: str) -> bool:
        rec = self.state["processes"].pop(name, None)
        was = False
        if rec:
            was = processes.terminate(int(rec.get("pid") or 0), rec.get("marker", "\0"))
        leftovers = [self.paths.pidfile(name)]
        if name == "unbound":
            leftovers.append(self.paths.unbound_control)
        for path in leftovers:
            try:
                os.unlink(path)
            except OSError:
                pass
        self._save_state()
        return was

    def _add_addresses(self, resolver: str, report: UpReport) -> None:
        wanted = labplan.server_addresses()
        if resolver in labplan.RESOLVERS:
            wanted.append(labplan.RESOLVERS[resolver])
        present = loopback.addresses()
        for a in wanted:
            if a in present:
                continue
            loopback.add(a)
            if a not in self.state["added_addresses"]:
                self.state["added_addresses"].append(a)
            self._save_state()
            report.added_addresses.append(a)

    def _servers(self, changed: set[dns.name.Name], report: UpReport) -> None:
        waiting: list[tuple[LabZone, str]] = []
        for z in labplan.ZONES:
            name = labplan.server_name(z)
            cmd = [self.python, "-m", "sigchain", *labplan.serve_args(z, self.paths)]
            marker = self.paths.served(z)
            rec = self.state["processes"].get(name)
            if rec and self._proc_alive(name) and rec.get("cmd") == cmd:
                if z.name in changed:
                    processes.send_signal(rec["pid"], marker, signal.SIGHUP)
                    action = "reloaded"
                else:
                    action = "running"
            else:
                if rec:
                    self._stop(name)
                proc = processes.spawn(cmd, self.paths.log(name), self.paths.pidfile(name),
                                       cwd=self.paths.root)
                self._record(name, proc.pid, marker, cmd, z.address, "server")
                action = "started"
            report.servers.append({"name": name, "zone": z.name.to_text(), "address": z.address,
                                   "pid": self.state["processes"][name]["pid"], "action": action})
            waiting.append((z, name))
        deadline = time.monotonic() + START_TIMEOUT
        for z, name in waiting:
            serial = int(self.state["zones"][z.name.to_text()]["serial"])
            self._wait_serving(z, name, serial, deadline)

    def _wait_serving(self, z: LabZone, name: str, serial: int, deadline: float) -> None:
        """Until the server answers the zone's SOA with the serial just written."""
        q = dns.message.make_query(z.name, dns.rdatatype.SOA)
        q.flags &= ~dns.flags.RD
        seen = None
        while True:
            try:
                r = dns.query.udp(q, z.address, port=labplan.PORT, timeout=0.3)
                if r.rcode() == dns.rcode.NOERROR and r.answer:
                    seen = r.answer[0][0].serial  # type: ignore[attr-defined]
                    if seen == serial:
                        return
            except (dns.exception.DNSException, OSError):
                pass
            if not self._proc_alive(name):
                log = processes.tail(self.paths.log(name))
                raise OperationalError(
                    f"sigchain serve for {z.name} on {z.address} exited"
                    + (f":\n{log}" if log else f" (see {self.paths.log(name)})")
                )
            if time.monotonic() > deadline:
                got = f"it serves serial {seen}" if seen is not None else "no answer"
                raise OperationalError(
                    f"{z.name} on {z.address} not serving serial {serial} after "
                    f"{START_TIMEOUT:.0f}s ({got}); see {self.paths.log(name)}"
                )
            time.sleep(0.1)

    def _resolver_cmd(self, kind: str) -> tuple[list[str], str]:
        if kind == "unbound":
            conf = self.paths.path("unbound.conf")
            return [self._program("unbound"), "-d", "-c", conf], conf
        conf = self.paths.path("named.conf")
        return [self._program("named"), "-4", "-g", "-c", conf], conf

    def _check_config(self, kind: str, conf: str) -> None:
        checker = self.which("unbound-checkconf" if kind == "unbound" else "named-checkconf")
        if checker is None:
            return
        proc = processes.run_tool([checker, conf])
        if proc.returncode != 0:
            raise OperationalError(f"{os.path.basename(checker)} rejects {conf}: "
                                   f"{(proc.stderr or proc.stdout).strip()}")

    def _flush_unbound(self) -> None:
        control = self._program("unbound-control")
        conf = self.paths.path("unbound.conf")
        for args in (["flush_zone", "."], ["flush_bogus"], ["flush_negative"], ["flush_infra", "all"]):
            proc = processes.run_tool([control, "-c", conf, *args])
            if proc.returncode != 0:
                raise OperationalError(
                    f"unbound-control {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}"
                )

    def _resolvers(self, resolver: str, texts: dict[str, str], zones_changed: bool,
                   report: UpReport) -> None:
        for kind in labplan.RESOLVERS:
            rec = self.state["processes"].get(kind)
            if kind != resolver:
                if rec:
                    stopped = self._stop(kind)
                    report.resolvers.append({"name": kind, "action": "stopped" if stopped else "gone"})
                continue
            address = labplan.RESOLVERS[kind]
            conf_text = texts[f"{kind}.conf"] + texts["anchor.ds"]
            config = hashlib.sha256(conf_text.encode()).hexdigest()[:32]
            if rec and self._proc_alive(kind) and rec.get("config") == config:
                action = "running"
                if zones_changed:
                    if kind == "unbound":
                        self._flush_unbound()
                        action = "cache flushed"
                    else:
                        self._stop(kind)
                        rec = None
                if rec is not None:
                    report.resolvers.append({"name": kind, "address": address, "pid": rec["pid"],
                                             "action": action})
                    continue
            elif rec:
                self._stop(kind)
            cmd, conf = self._resolver_cmd(kind)
            self._check_config(kind, conf)
            proc = processes.spawn(cmd, self.paths.log(kind), None, cwd=self.paths.root)
            self._record(kind, proc.pid, conf, cmd, address, "resolver", config)
            self._wait_resolver(kind, address)
            report.resolvers.append({"name": kind, "address": address, "pid": proc.pid,
                                     "action": "started"})

    def _wait_resolver(self, kind: str, address: str) -> None:
        q = dns.message.make_query("test.", dns.rdatatype.SOA, want_dnssec=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                dns.query.udp(q, address, port=labplan.PORT, timeout=0.5)
                return
            except (dns.exception.DNSException, OSError):
                pass
            if not self._proc_alive(kind):
                log = processes.tail(self.paths.log(kind), 8)
                raise OperationalError(f"{kind} exited at start" + (f":\n{log}" if log else ""))
            if time.monotonic() > deadline:
                raise OperationalError(f"{kind} on {address} did not answer within {START_TIMEOUT:.0f}s; "
                                       f"see {self.paths.log(kind)}")
            time.sleep(0.1)

    # ---- the commands ------------------------------------------------------------------------

    def up(self, resolver: str | None = None, fresh: bool = False) -> UpReport:
        """Bring the lab to the requested shape (resolver: as last time, else unbound); on
        failure after starting anything, take down everything the lab runs and every
        address it added, then re-raise."""
        self._need_root("up")
        self._check_directory()
        with self._locked():
            if resolver is None:
                resolver = self.state.get("resolver") or "unbound"
            self.preflight(resolver)
            return self._up(resolver, fresh)

    def _up(self, resolver: str, fresh: bool) -> UpReport:
        now = self.clock.now()
        report = UpReport(self.paths.root, resolver)
        os.makedirs(self.paths.root, exist_ok=True)
        self._lock_now()
        for sub in ("run", "logs"):
            os.makedirs(self.paths.path(sub), exist_ok=True)
        if fresh:
            for sub in ("keys", "zones"):
                shutil.rmtree(self.paths.path(sub), ignore_errors=True)
            for entry in self.state["zones"].values():
                entry["fingerprint"] = None  # rebuild all; serials keep going up
        changed = self._build(now, report)
        texts = self._write_configs(report)
        self.state["resolver"] = resolver
        self._save_state()
        try:
            self._add_addresses(resolver, report)
            self._servers(changed, report)
            self._resolvers(resolver, texts, bool(changed) or report.anchor_changed, report)
        except BaseException:
            self.teardown()
            raise
        return report

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One lab command at a time per directory (flock on the directory itself; a
        directory that does not exist yet is locked as soon as `up` creates it)."""
        self._lock_fd: int | None = None
        try:
            self._lock_now()
            yield
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the lock
                self._lock_fd = None

    def _lock_now(self) -> None:
        if getattr(self, "_lock_fd", None) is not None or not os.path.isdir(self.paths.root):
            return
        fd = os.open(self.paths.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OperationalError(
                f"another sigchain lab command is working on {self.paths.root}; try again"
            ) from None
        self._lock_fd = fd
        self._state = None  # read the state again, now that nobody else is changing it

    def teardown(self) -> dict[str, list[str]]:
        """Stop every process the lab recorded (by PID, if still ours) and remove every
        address it added to lo. Keys, zones and configs stay."""
        stopped, gone, removed = [], [], []
        for name in list(self.state["processes"]):
            (stopped if self._stop(name) else gone).append(name)
        added = list(self.state["added_addresses"])
        if added:
            present = loopback.addresses()
            for a in added:
                if a in present:
                    loopback.remove(a)
                    removed.append(a)
                self.state["added_addresses"].remove(a)
                self._save_state()
        self._save_state()
        return {"stopped": stopped, "not_running": gone, "removed_addresses": removed}

    def down(self) -> dict[str, list[str]]:
        if not os.access(self.paths.root, os.R_OK | os.X_OK) and os.path.exists(self.paths.root):
            self._need_root("down")
        if not self.exists:
            return {"stopped": [], "not_running": [], "removed_addresses": []}
        if self.state["processes"] or self.state["added_addresses"]:
            self._need_root("down")
        with self._locked():
            return self.teardown()

    def status(self, probe: bool = True) -> dict[str, Any]:
        """Each zone, its server, keys, DS at the parent, earliest signature expiry; each
        process and whether it runs. `probe` asks each running server for the zone's SOA."""
        if not self.exists:
            raise InputError(f"no lab in {self.paths.root} (run: sigchain lab up --dir {self.paths.root})")
        now = self.clock.now()
        served: dict[dns.name.Name, zonefile.LoadedZone | None] = {}
        for z in labplan.ZONES:
            try:
                served[z.name] = zonefile.load_zone(self.paths.served(z), z.name.to_text())
            except SigchainError:
                served[z.name] = None
        zones = []
        for z in labplan.ZONES:
            entry: dict[str, Any] = {
                "zone": z.name.to_text(), "about": z.about, "denial": z.denial.value,
                "server": z.address, "parent": z.parent.to_text() if z.parent else None,
            }
            dnskeys = []
            keys = []
            if z.signed and os.path.isdir(self.paths.keys(z)):
                try:
                    for path in keystore.zone_key_paths(self.paths.keys(z), z.name):
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
                times = labplan.signature_times(loaded.nodes)
                if times is not None:
                    entry["earliest_expiry"] = iso(times.expiration)
                    entry["earliest_expiry_epoch"] = times.expiration
                    entry["resign_due"] = labplan.past_half_validity(times, now)
            entry["ds_at_parent"] = self._parent_ds(z, served, dnskeys)
            name = labplan.server_name(z)
            rec = self.state["processes"].get(name)
            entry["server_pid"] = rec.get("pid") if rec else None
            entry["server_running"] = self._proc_alive(name)
            if probe and entry["server_running"]:
                entry["answering_serial"] = _soa_serial(z)
            zones.append(entry)
        procs = []
        for name, rec in sorted(self.state["processes"].items()):
            procs.append({"name": name, "pid": rec.get("pid"), "address": rec.get("address"),
                          "kind": rec.get("kind"), "running": self._proc_alive(name),
                          "log": rec.get("log")})
        resolver = self.state.get("resolver")
        return {
            "dir": self.paths.root,
            "resolver": resolver,
            "resolver_address": labplan.RESOLVERS.get(resolver or ""),
            "anchor": self.state.get("anchor", []),
            "zones": zones,
            "processes": procs,
            "running": bool(procs) and all(p["running"] for p in procs),
            "added_addresses": list(self.state["added_addresses"]),
        }

    def _parent_ds(self, z: LabZone, served: dict[dns.name.Name, Any], dnskeys: list[Any]) -> list[dict[str, Any]]:
        if z.parent is None:  # the root: its DS is the trust anchor
            rds_list = [ln.split() for ln in self.state.get("anchor", [])]
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


def _soa_serial(z: LabZone) -> int | None:
    q = dns.message.make_query(z.name, dns.rdatatype.SOA)
    q.flags &= ~dns.flags.RD
    try:
        r = dns.query.udp(q, z.address, port=labplan.PORT, timeout=0.5)
    except (dns.exception.DNSException, OSError):
        return None
    if r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    return int(r.answer[0][0].serial)  # type: ignore[attr-defined]
