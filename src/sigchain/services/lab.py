"""The lab: the hierarchy of `core.lab.hierarchy` built, signed and served on loopback by one
`sigchain serve` per address, with a validating Unbound or named in front.

Everything the lab makes lives in one directory: keys, zone files, the trust anchor, the
resolver configs, PID and log files, and `lab.json` — what it started, which addresses it
added to lo, and what each zone was signed from. `up` observes, asks `core.lab.plan` what to
do (reusing keys, re-signing only what changed or is past half its signature validity) and
does it; `down` stops what `up` started, by PID, and removes only the addresses it added.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from sigchain.clock import SYSTEM, Clock
from sigchain.core.lab import hierarchy
from sigchain.core.lab import plan as lab_plan
from sigchain.core.lab.hierarchy import LabPaths, LabZone
from sigchain.core.lab.plan import Action, Observed, Plan, UpRequest, ZoneFiles
from sigchain.core.lab.state import LabState, ProcessRecord, ZoneRecord
from sigchain.edge import loopback, processes, zonefile
from sigchain.errors import InputError, OperationalError, SigchainError
from sigchain.model.keys import KeyRole
from sigchain.services import labdaemons, labkeys, labstatus

RESOLVER_CHOICES = ("unbound", "named", "none")
RESOLVER_PROGRAMS = {"unbound": ["unbound", "unbound-control"], "named": ["named"]}


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
    resign_by: int | None = None  # run `lab up` again by then: a signed zone passes half validity

    def to_json(self) -> dict[str, Any]:
        return {
            "dir": self.directory, "resolver": self.resolver, "zones": self.zones,
            "servers": self.servers, "resolvers": self.resolvers,
            "added_addresses": self.added_addresses, "anchor": self.anchor,
            "anchor_changed": self.anchor_changed, "resign_by": self.resign_by,
            "resolver_address": hierarchy.RESOLVERS.get(self.resolver),
        }


def _zone_outcome(w: lab_plan.WriteZone) -> str:
    signed = hierarchy.zone(w.zone).signed
    if signed and w.because == "past half validity":
        return "re-signed (past half validity)"
    return ("signed" if signed else "written") + f" ({w.because})"


class Lab:
    """One lab directory. `which` finds peer programs; `clock` is the only clock it reads."""

    def __init__(self, directory: str, *, clock: Clock = SYSTEM,
                 which: Callable[[str], str | None] = processes.find_binary,
                 python: str = sys.executable, euid: Callable[[], int] = os.geteuid):
        self.paths = LabPaths(os.path.abspath(directory))
        self.clock = clock
        self.which = which
        self.python = python
        self.euid = euid
        self._state: LabState | None = None
        self._lock_fd: int | None = None
        self.daemons = labdaemons.Daemons(self.paths, clock, which, self._proc_alive)

    @property
    def state(self) -> LabState:
        """lab.json, read on first use (after the root check, for commands that need root)."""
        if self._state is None:
            self._state = self._load_state()
        return self._state

    # ---- state ---------------------------------------------------------------------------

    def _load_state(self) -> LabState:
        try:
            with open(self.paths.state, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return LabState()
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable lab state: {exc}", file=self.paths.state) from None
        return LabState.from_json(data, self.paths.state)

    def _save(self, state: LabState) -> None:
        self._state = state
        text = json.dumps(state.to_json(), indent=2, sort_keys=True)
        zonefile.write_atomic(self.paths.state, [text, "\n"])

    @property
    def exists(self) -> bool:
        return os.path.exists(self.paths.state)

    def _proc_alive(self, name: str) -> bool:
        rec = self.state.processes.get(name)
        return rec is not None and processes.is_ours(rec.pid, rec.marker)

    # ---- checks before anything changes ----------------------------------------------------

    def _need_root(self, what: str) -> None:
        if self.euid() != 0:
            raise OperationalError(
                f"lab {what} needs root: the lab serves DNS on port 53 and adds addresses to lo "
                "(run it as root, e.g. with sudo)"
            )

    def preflight(self, resolver: str) -> None:
        """Root and peer programs (busy ports are the plan's refusal): fail before anything
        starts or changes."""
        if resolver not in RESOLVER_CHOICES:
            raise InputError(f"unknown resolver {resolver!r} (one of {', '.join(RESOLVER_CHOICES)})")
        self._need_root("up")
        wanted = ["ip", *RESOLVER_PROGRAMS.get(resolver, [])]
        missing = [p for p in wanted if self.which(p) is None]
        if missing:
            pkgs = sorted({labdaemons.PACKAGES.get(p, p) for p in missing})
            raise OperationalError(
                f"missing peer program(s): {', '.join(missing)}; install with: "
                f"apt-get install -y {' '.join(pkgs)}"
            )

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

    # ---- observing ---------------------------------------------------------------------------

    def observe(self, resolver: str, generated: frozenset[str] = frozenset()) -> Observed:
        """What `plan_up` needs to know, read without changing anything."""
        ports = {a: p for a in lab_plan.wanted_addresses(resolver)
                 if (p := loopback.port_problem(a, hierarchy.PORT)) is not None}
        keys, decoys, files = {}, {}, {}
        for z in hierarchy.ZONES:
            name = z.name.to_text()
            if z.signed and (found := labkeys.dnskeys(self.paths.keys(z), z.name)):
                keys[name] = found
            if z.broken_ds and (found := labkeys.dnskeys(self.paths.decoy_keys(z), z.name)):
                decoys[name] = found
        for fname in lab_plan.config_texts(self.paths, None):
            try:
                with open(self.paths.path(fname), encoding="utf-8") as f:
                    files[fname] = lab_plan.sha256(f.read())
            except (OSError, ValueError):
                pass
        return Observed(
            addresses=frozenset(loopback.addresses()),
            alive=frozenset(n for n in self.state.processes if self._proc_alive(n)),
            port_problems=ports, keys=keys, decoy_keys=decoys,
            zone_files={z.name.to_text(): self._zone_files(z) for z in hierarchy.ZONES},
            files=files, generated=generated,
        )

    def _zone_files(self, z: LabZone) -> ZoneFiles:
        served = self.paths.served(z)
        unsigned, exists = os.path.exists(self.paths.unsigned(z)), os.path.exists(served)
        times = None
        if exists and z.signed:
            try:
                times = hierarchy.signature_times(zonefile.load_zone(served, z.name.to_text()).nodes)
            except SigchainError:
                times = None
        return ZoneFiles(unsigned, exists, times)

    # ---- lab up: plan, then do -----------------------------------------------------------

    def up(self, resolver: str | None = None, fresh: bool = False) -> UpReport:
        """Bring the lab to the requested shape (resolver: as last time, else unbound); on
        failure after starting anything, take down everything the lab runs and every
        address it added, then re-raise."""
        with self._prepared(resolver, fresh) as request:
            return self._up(request)

    def plan(self, resolver: str | None = None, fresh: bool = False) -> Plan:
        """What `up` would do now (`lab up --dry-run`); changes nothing."""
        with self._prepared(resolver, fresh) as request:
            return self._plan(request)

    @contextlib.contextmanager
    def _prepared(self, resolver: str | None, fresh: bool) -> Iterator[UpRequest]:
        self._need_root("up")
        self._check_directory()
        with self._locked():
            if resolver is None:
                resolver = self.state.resolver or "unbound"
            self.preflight(resolver)
            yield UpRequest(self.paths, resolver, fresh, (self.python, "-m", "sigchain"))

    def _plan(self, request: UpRequest, generated: frozenset[str] = frozenset()) -> Plan:
        planned = lab_plan.plan_up(self.state, self.observe(request.resolver, generated),
                                   self.clock.now(), request)
        if planned.refusal is not None:
            raise OperationalError(planned.refusal)
        return planned

    def _up(self, request: UpRequest) -> UpReport:
        now = self.clock.now()
        planned = self._plan(request)
        os.makedirs(self.paths.root, exist_ok=True)
        self._lock_now()
        for sub in ("run", "logs"):
            os.makedirs(self.paths.path(sub), exist_ok=True)
        if planned.needs_keys():
            # Zone texts and the anchor depend on the new keys: make them, then plan again.
            generated = self._make_keys(planned.build, now)
            planned = self._plan(replace(request, fresh=False), generated)
        report = UpReport(self.paths.root, request.resolver)
        self._build(planned, now, report)
        try:
            self._run(planned.run, report)
        except BaseException:
            self.teardown()
            raise
        return report

    def _make_keys(self, actions: Iterable[Action], now: int) -> frozenset[str]:
        generated = set()
        for a in actions:
            if isinstance(a, lab_plan.RemoveKeysAndZones):
                for sub in ("keys", "zones"):
                    shutil.rmtree(self.paths.path(sub), ignore_errors=True)
                self._save(self.state.forget_fingerprints())
            elif isinstance(a, lab_plan.GenerateKey):
                z = hierarchy.zone(a.zone)
                own, decoy = self.paths.keys(z), self.paths.decoy_keys(z)
                os.makedirs(self.paths.path("keys"), mode=0o700, exist_ok=True)
                os.chmod(self.paths.path("keys"), 0o700)
                labkeys.generate(decoy if a.decoy else own, z.name, KeyRole(a.role), now,
                                 beside=own if a.decoy else decoy)
                generated.add(a.zone)
        return frozenset(generated)

    def _build(self, planned: Plan, now: int, report: UpReport) -> None:
        """Zone files, signatures and configs; then the state says what they were built from
        (only once every file is written)."""
        os.makedirs(self.paths.path("keys"), mode=0o700, exist_ok=True)
        os.chmod(self.paths.path("keys"), 0o700)
        os.makedirs(self.paths.path("zones"), exist_ok=True)
        built: dict[str, ZoneRecord] = {}
        outcomes: dict[str, dict[str, Any]] = {}
        to_sign: list[LabZone] = []
        for a in planned.build:
            if isinstance(a, lab_plan.WriteZone):
                if a.text is None:
                    raise OperationalError(f"no keys yet to write {a.zone} with")  # planned again first
                z = hierarchy.zone(a.zone)
                zonefile.write_atomic(self.paths.unsigned(z), [a.text])
                built[a.zone] = ZoneRecord(a.fingerprint, a.serial, now)
                outcomes[a.zone] = {"zone": a.zone, "action": _zone_outcome(a), "serial": a.serial}
            elif isinstance(a, lab_plan.SignZone):
                to_sign.append(hierarchy.zone(a.zone))
            elif isinstance(a, lab_plan.WriteFile):
                if a.text is None:
                    raise OperationalError(f"no root keys yet to write {a.name} with")
                zonefile.write_atomic(self.paths.path(a.name), [a.text])
        labkeys.sign_all(self.paths, to_sign, now)
        for z in hierarchy.ZONES:
            name = z.name.to_text()
            prev = self.state.zones.get(name)
            kept = {"zone": name, "action": "kept", "serial": prev.serial if prev else None}
            report.zones.append(outcomes.get(name, kept))
        report.anchor = list(planned.anchor or ())
        report.anchor_changed = planned.anchor_changed
        report.resign_by = planned.wake_at
        self._save(replace(self.state.with_zones(built), resolver=report.resolver,
                           anchor=tuple(report.anchor)))

    def _run(self, actions: Iterable[Action], report: UpReport) -> None:
        """Addresses, servers and resolvers, in the plan's order; the report lists every
        server and the resolver asked for, whether or not anything was done to it."""
        servers: dict[str, str] = {}
        resolvers: dict[str, dict[str, Any]] = {}
        deadline: float | None = None
        for a in actions:
            if isinstance(a, lab_plan.AddAddress):
                loopback.add(a.address)
                self._save(self.state.with_address(a.address))
                report.added_addresses.append(a.address)
            elif isinstance(a, lab_plan.StopProcess):
                self._stop(a.name)
            elif isinstance(a, lab_plan.StartServer):
                self.spawn(a.name, list(a.cmd), self.paths.served(hierarchy.zone(a.zone)),
                           a.address, "server")
                servers[a.name] = "started"
            elif isinstance(a, lab_plan.ReloadServer):
                rec = self.state.processes[a.name]
                processes.send_signal(rec.pid, rec.marker, signal.SIGHUP)
                servers[a.name] = "reloaded"
            elif isinstance(a, lab_plan.WaitServing):
                if deadline is None:
                    report.servers = self._server_report(servers)
                    deadline = self.daemons.deadline()
                self.daemons.wait_serving(hierarchy.zone(a.zone), a.name, a.serial, deadline)
            else:
                self._resolver_action(a, resolvers)
        wanted = lab_plan.lab_resolvers(report.resolver)
        for kind, address in wanted.items():
            if kind not in resolvers:
                resolvers[kind] = {"name": kind, "address": address,
                                   "pid": self.state.processes[kind].pid, "action": "running"}
        order = [*hierarchy.RESOLVERS, hierarchy.SIGCHAIN_RESOLVER[0]]
        report.resolvers = [resolvers[k] for k in order if k in resolvers]

    def _server_report(self, done: dict[str, str]) -> list[dict[str, Any]]:
        out = []
        for z in hierarchy.ZONES:
            name = hierarchy.server_name(z)
            out.append({"name": name, "zone": z.name.to_text(), "address": z.address,
                        "pid": self.state.processes[name].pid, "action": done.get(name, "running")})
        return out

    def _resolver_action(self, a: Action, report: dict[str, dict[str, Any]]) -> None:
        if isinstance(a, lab_plan.RetireResolver):
            report[a.kind] = {"name": a.kind, "action": "stopped" if self._stop(a.kind) else "gone"}
        elif isinstance(a, lab_plan.FlushResolver):
            rec = self.state.processes[a.kind]
            if a.kind == "unbound":
                self.daemons.flush_unbound()
            else:  # SIGHUP: it re-reads its config and empties its cache; wait until it says so
                self.daemons.flush_sigchain(rec)
            report[a.kind] = {"name": a.kind, "address": rec.address, "pid": rec.pid,
                              "action": "cache flushed"}
        elif isinstance(a, lab_plan.StartResolver):
            cmd, conf = self.daemons.resolver_cmd(a.kind, self.python)
            self.daemons.check_config(a.kind, conf)
            pid = self.spawn(a.kind, cmd, conf, a.address, "resolver", a.config or "",
                             pidfile=False)
            self.daemons.wait_resolver(a.kind, a.address)
            report[a.kind] = {"name": a.kind, "address": a.address, "pid": pid,
                              "action": "started"}
        else:
            raise TypeError(f"not an action of lab up: {a!r}")

    # ---- processes ---------------------------------------------------------------------------

    def spawn(self, name: str, cmd: list[str], marker: str, address: str, kind: str,
              config: str = "", pidfile: bool = True) -> int:
        """Start a lab process (its log and pidfile under the lab directory) and record it in
        the lab state, so status, repair and down find it again; its pid."""
        proc = processes.spawn(cmd, self.paths.log(name),
                               self.paths.pidfile(name) if pidfile else None, cwd=self.paths.root)
        rec = ProcessRecord(proc.pid, marker, tuple(cmd), address, kind, config,
                            self.paths.log(name), self.clock.now())
        self._save(self.state.with_process(name, rec))
        return proc.pid

    def _stop(self, name: str) -> bool:
        rec = self.state.processes.get(name)
        was = rec is not None and processes.terminate(rec.pid, rec.marker, clock=self.clock)
        leftovers = [self.paths.pidfile(name)]
        if name == "unbound":
            leftovers.append(self.paths.unbound_control)
        for path in leftovers:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._save(self.state.without_process(name))
        return was

    # ---- one command at a time; down -----------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One lab command at a time per directory (flock on the directory itself; a
        directory that does not exist yet is locked as soon as `up` creates it)."""
        self._lock_fd = None
        try:
            self._lock_now()
            yield
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the lock
                self._lock_fd = None

    def _lock_now(self) -> None:
        if self._lock_fd is not None or not os.path.isdir(self.paths.root):
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
        present = frozenset(loopback.addresses()) if self.state.added_addresses else frozenset()
        for a in lab_plan.plan_down(self.state, Observed(addresses=present)):
            if isinstance(a, lab_plan.StopProcess):
                (stopped if self._stop(a.name) else gone).append(a.name)
            elif isinstance(a, lab_plan.RemoveAddress):
                if a.present:
                    loopback.remove(a.address)
                    removed.append(a.address)
                self._save(self.state.without_address(a.address))
        self._save(self.state)
        return {"stopped": stopped, "not_running": gone, "removed_addresses": removed}

    def down(self) -> dict[str, list[str]]:
        if not os.access(self.paths.root, os.R_OK | os.X_OK) and os.path.exists(self.paths.root):
            self._need_root("down")
        if not self.exists:
            return {"stopped": [], "not_running": [], "removed_addresses": []}
        if self.state.processes or self.state.added_addresses:
            self._need_root("down")
        with self._locked():
            return self.teardown()

    def status(self, probe: bool = True) -> dict[str, Any]:
        """Each zone, its server, keys, DS at the parent, earliest signature expiry; each
        process and whether it runs. `probe` asks each running server for the zone's SOA."""
        if not self.exists:
            raise InputError(f"no lab in {self.paths.root} (run: sigchain lab up --dir {self.paths.root})")
        return labstatus.status(self.paths, self.state, self._proc_alive, self.clock.now(), probe)

