"""The peer daemons of the lab: how each resolver is started, checked and flushed, and the
waits until a server or resolver answers, or sigchain's resolver confirms a SIGHUP (with the
lab's clock for the deadlines)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from sigchain.clock import Clock
from sigchain.core.lab import hierarchy
from sigchain.core.lab.hierarchy import LabPaths, LabZone
from sigchain.core.lab.state import ProcessRecord
from sigchain.edge import processes
from sigchain.errors import OperationalError
from sigchain.services.labstatus import soa_serial

START_TIMEOUT = 30.0
FLUSH_WAIT = 10.0  # for sigchain's resolver to say it took a SIGHUP
# The Debian package that brings each program the lab runs.
PACKAGES = {
    "ip": "iproute2", "unbound": "unbound", "unbound-control": "unbound",
    "unbound-checkconf": "unbound", "named": "bind9", "named-checkconf": "bind9-utils",
}


class Daemons:
    """`which` finds programs; `alive(name)` says whether a recorded process still runs."""

    def __init__(self, paths: LabPaths, clock: Clock, which: Callable[[str], str | None],
                 alive: Callable[[str], bool]):
        self.paths = paths
        self.clock = clock
        self.which = which
        self.alive = alive

    def deadline(self) -> float:
        return self.clock.monotonic() + START_TIMEOUT

    def program(self, name: str) -> str:
        path = self.which(name)
        if path is None:
            raise OperationalError(
                f"{name} is not installed (Debian package {PACKAGES.get(name, name)})"
            )
        return path

    def wait_serving(self, z: LabZone, name: str, serial: int, deadline: float) -> None:
        """Until the server answers the zone's SOA with the serial just written."""
        seen = None
        while True:
            answered = soa_serial(z, 0.3)
            if answered is not None:
                seen = answered
                if seen == serial:
                    return
            if not self.alive(name):
                log = processes.tail(self.paths.log(name))
                raise OperationalError(
                    f"sigchain serve for {z.name} on {z.address} exited"
                    + (f":\n{log}" if log else f" (see {self.paths.log(name)})")
                )
            if self.clock.monotonic() > deadline:
                got = f"it serves serial {seen}" if seen is not None else "no answer"
                raise OperationalError(
                    f"{z.name} on {z.address} not serving serial {serial} after "
                    f"{START_TIMEOUT:.0f}s ({got}); see {self.paths.log(name)}"
                )
            self.clock.sleep(0.1)

    def resolver_cmd(self, kind: str, python: str) -> tuple[list[str], str]:
        """The command starting a resolver of the lab (`python`: the one running sigchain),
        and its config file (also the marker that finds the process again)."""
        if kind == "sigchain-resolver":
            conf = self.paths.path(hierarchy.RESOLVER_CONFIGS[kind])
            return [python, "-m", "sigchain", "resolver", "--config", conf], conf
        if kind == "unbound":
            conf = self.paths.path("unbound.conf")
            return [self.program("unbound"), "-d", "-c", conf], conf
        conf = self.paths.path("named.conf")
        return [self.program("named"), "-4", "-g", "-c", conf], conf

    def check_config(self, kind: str, conf: str) -> None:
        if kind == "sigchain-resolver":
            return  # the resolver itself says what is wrong with its config, at start
        checker = self.which("unbound-checkconf" if kind == "unbound" else "named-checkconf")
        if checker is None:
            return
        proc = processes.run_tool([checker, conf])
        if proc.returncode != 0:
            raise OperationalError(f"{os.path.basename(checker)} rejects {conf}: "
                                   f"{(proc.stderr or proc.stdout).strip()}")

    def flush_unbound(self) -> None:
        control = self.program("unbound-control")
        conf = self.paths.path("unbound.conf")
        for args in (["flush_zone", "."], ["flush_bogus"], ["flush_negative"], ["flush_infra", "all"]):
            proc = processes.run_tool([control, "-c", conf, *args])
            if proc.returncode != 0:
                raise OperationalError(
                    f"unbound-control {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}"
                )

    def flush_sigchain(self, rec: ProcessRecord) -> None:
        """SIGHUP sigchain's resolver and wait until its log says the config was re-read and
        the cache flushed, so the next question meets the new config and an empty cache;
        a config it refused (the old one stays) is an error."""
        name = hierarchy.SIGCHAIN_RESOLVER[0]
        log = self.paths.log(name)
        start = os.path.getsize(log) if os.path.exists(log) else 0
        processes.send_signal(rec.pid, rec.marker, signal.SIGHUP)
        deadline = self.clock.monotonic() + FLUSH_WAIT
        while self.clock.monotonic() < deadline:
            with open(log, encoding="utf-8", errors="replace") as f:
                f.seek(start)
                said = [line for line in f if "SIGHUP:" in line]
            if any("cache flushed" in line for line in said):
                return
            refused = [line for line in said if "not re-read" in line]
            if refused:
                raise OperationalError(f"{name} did not take its config: {refused[0].strip()}")
            self.clock.sleep(0.05)
        raise OperationalError(f"{name} did not confirm its SIGHUP within {FLUSH_WAIT:.0f}s; "
                               f"see {log}")

    def wait_resolver(self, kind: str, address: str) -> None:
        q = dns.message.make_query("test.", dns.rdatatype.SOA, want_dnssec=True)
        deadline = self.clock.monotonic() + START_TIMEOUT
        while True:
            try:
                dns.query.udp(q, address, port=hierarchy.PORT, timeout=0.5)
                return
            except (dns.exception.DNSException, OSError):
                pass
            if not self.alive(kind):
                log = processes.tail(self.paths.log(kind), 8)
                raise OperationalError(f"{kind} exited at start" + (f":\n{log}" if log else ""))
            if self.clock.monotonic() > deadline:
                raise OperationalError(f"{kind} on {address} did not answer within {START_TIMEOUT:.0f}s; "
                                       f"see {self.paths.log(kind)}")
            self.clock.sleep(0.1)
