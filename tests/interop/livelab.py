"""A small live DNSSEC hierarchy on 127.64.0.0/16 for the live-rollover tests (issue 15): the
root, `test.` and `example.test.` each an inline zone of its own `sigchain serve` on port 53,
a validating Unbound and a validating named in front, and a querier that asks both several
times a second and records every answer that is not a validated one."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode

from tests.conftest import need, run, sc
from tests.interop.test_serve_hardening import Server
from tests.interop.test_transfer import Nsd

ROOT, TLD, CHILD = "127.64.0.1", "127.64.0.2", "127.64.0.3"
PRIMARY = "127.64.0.4"  # test.'s hidden primary, when NSD serves test. at TLD (`hidden`)
UNBOUND, NAMED = "127.64.1.1", "127.64.1.2"
RESOLVERS = {"unbound": UNBOUND, "named": NAMED}
ZONE = "example.test."
CACHE_TTL = 2  # the resolvers keep nothing longer: they re-fetch keys and DS all the time
SECRET = "bGl2ZXJvbGwtZHMtcHVzaC10ZXN0LXNlY3JldC0wMTI="
TSIG = f'[keys.dsup]\nalgorithm = "hmac-sha256"\nsecret = "{SECRET}"\n'

# example.test.'s policy: every delay a second, so each roll step takes seconds.
TIMINGS = {"dnskey-ttl": "1s", "max-zone-ttl": "1s", "publish-safety": "1s",
           "retire-safety": "1s", "zone-propagation-delay": "1s", "parent-ds-ttl": "1s",
           "parent-propagation-delay": "1s", "signatures-validity": "600s",
           "signatures-validity-dnskey": "600s", "signatures-refresh": "597s",
           "signatures-jitter": "1s", "purge-keys": "1h"}


def fast_policy(algorithm: str) -> str:
    return "".join(f'{k} = "{v}"\n' for k, v in TIMINGS.items()) + \
        f'[[keys]]\nrole = "ksk"\nalgorithm = "{algorithm}"\n' \
        f'[[keys]]\nrole = "zsk"\nalgorithm = "{algorithm}"\n'


ROOT_ZONE = ". 1 SOA a.lab. hostmaster.lab. 1 3600 600 86400 1\n. 1 NS a.lab.\n" \
            f"a.lab. 1 A {ROOT}\ntest. 1 NS ns.test.\nns.test. 1 A {TLD}\n"
TLD_ZONE = "$ORIGIN test.\n$TTL 1\n@ SOA ns hostmaster 1 3600 600 86400 1\n@ NS ns\n" \
           f"ns A {TLD}\nexample NS ns.example\nns.example A {CHILD}\n"
CHILD_ZONE = f"$ORIGIN {ZONE}\n$TTL 1\n@ SOA ns hostmaster 1 3600 600 86400 1\n@ NS ns\n" \
             f"ns A {CHILD}\nwww A 192.0.2.80\n"


def keys_json(zone: str, policy: Path | str, keys: Path) -> dict:  # type: ignore[type-arg]
    """The zone's keys made (as the server would) before it starts, to know them."""
    sc("keys", "run", zone, "--policy", policy, "--keys", keys, check=True)
    return json.loads(sc("keys", "status", zone, "--keys", keys, "--json", check=True).stdout)


def ds_lines(keydir: Path, base: str) -> list[str]:
    out = sc("ds", keydir / f"{base}.key", check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


@dataclass
class Lab:
    """The three servers and the two resolvers. `hidden`: test. is signed by a hidden primary
    (PRIMARY) taking the DS UPDATEs, and served at TLD by NSD, its secondary: the primary can
    be restarted (to change its allow-update) while the resolvers see no outage."""

    tmp: Path
    servers: dict[str, Server] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    anchor_ds: list[str] = field(default_factory=list)
    hidden: bool = False
    nsd: Nsd | None = None
    added: list[str] = field(default_factory=list)  # addresses start_resolvers put on lo

    @property
    def sock(self) -> Path:
        return self.tmp / "run" / "ctl.sock"

    def start(self, allow_update: bool, hidden: bool = False) -> None:
        self.hidden = hidden
        self.tmp.chmod(0o700)
        (self.tmp / "run").mkdir(exist_ok=True)
        tld_csk = keys_json("test.", "default", self.tmp / "k-test")["keys"][0]
        root_csk = keys_json(".", "default", self.tmp / "k-root")["keys"][0]
        self.anchor_ds = ds_lines(self.tmp / "k-root", root_csk["base"])
        (self.tmp / "root.zone").write_text(
            ROOT_ZONE + "".join(line + "\n" for line in ds_lines(self.tmp / "k-test",
                                                                  tld_csk["base"])))
        (self.tmp / "fast.toml").write_text(fast_policy("ecdsap256sha256"))
        ksk = next(k for k in keys_json(ZONE, self.tmp / "fast.toml", self.tmp / "keys")["keys"]
                   if k["role"] == "ksk")  # its DS is at the parent from the start: secure
        (self.tmp / "test.zone").write_text(
            TLD_ZONE + "".join(line + "\n" for line in ds_lines(self.tmp / "keys", ksk["base"])))
        (self.tmp / "child.zone").write_text(CHILD_ZONE)
        (self.tmp / "test.anchor").write_text(
            "\n".join(ds_lines(self.tmp / "k-test", tld_csk["base"])) + "\n")
        self.servers["root"] = Server(self.tmp, {}, "udp-workers = 1\n" + _inline(
            ".", self.tmp / "root.zone", self.tmp / "k-root", "default"), host=ROOT, port=53)
        self.start_tld(allow_update)
        if hidden:
            (self.tmp / "nsd").mkdir(exist_ok=True)
            self.nsd = Nsd(self.tmp / "nsd", 53, 53, None, host=TLD, primary=PRIMARY,
                           zone="test")
            wait("NSD to serve test.", lambda: (r := ask(TLD, "test.", "SOA")) is not None
                 and r.rcode() == dns.rcode.NOERROR and r.answer, 20)
        self.start_child()
        self.start_resolvers()

    def start_tld(self, allow_update: bool) -> None:
        old = self.servers.pop("tld", None)
        if old is not None:
            assert old.stop() == 0, old.text()[-3000:]
        acl = 'allow-update = ["key:dsup"]\n' if allow_update else ""
        if self.hidden:  # NSD follows by NOTIFY and IXFR
            acl += f'also-notify = ["{TLD}#53"]\nallow-transfer = ["127.0.0.0/8"]\n'
        self.servers["tld"] = Server(self.tmp, {}, "udp-workers = 1\n" + TSIG + _inline(
            "test.", self.tmp / "test.zone", self.tmp / "k-test", "default") + acl,
            host=PRIMARY if self.hidden else TLD, port=53)

    def start_child(self) -> None:
        old = self.servers.pop("child", None)
        if old is not None:
            assert old.stop() == 0, old.text()[-3000:]
        at, primary = f"{TLD}#53", f"{PRIMARY if self.hidden else TLD}#53"
        check = (f'parent-check = {{ servers = ["{at}"], anchor = "{self.tmp / "test.anchor"}", '
                 f'submit = "{primary}", tsig = "dsup", interval = 1, warn-after = 5 }}\n')
        self.servers["child"] = Server(
            self.tmp, {}, f'udp-workers = 1\ncontrol-socket = "{self.sock}"\n' + TSIG
            + _inline(ZONE, self.tmp / "child.zone", self.tmp / "keys", str(self.tmp / "fast.toml"))
            + check, host=CHILD, port=53)

    def start_resolvers(self) -> None:
        for addr in (UNBOUND, NAMED):  # named listens only on addresses configured on lo
            if addr not in run(["ip", "-4", "addr", "show", "dev", "lo"]).stdout:
                run(["ip", "addr", "add", f"{addr}/32", "dev", "lo"], check=True)
                self.added.append(addr)
        hints = self.tmp / "root.hints"
        hints.write_text(f". 3600000 IN NS a.lab.\na.lab. 3600000 IN A {ROOT}\n")
        ds = [line.split(" DS ", 1)[1].split() for line in self.anchor_ds]
        (self.tmp / "anchor.ds").write_text("".join(f"{line}\n" for line in self.anchor_ds))
        (self.tmp / "anchor.conf").write_text("trust-anchors {\n" + "".join(
            f'\t. static-ds {t} {a} {d} "{"".join(rest)}";\n' for t, a, d, *rest in ds) + "};\n")
        (self.tmp / "unbound.conf").write_text(_unbound_conf(self.tmp))
        (self.tmp / "named.conf").write_text(_named_conf(self.tmp))
        for name, cmd in (("unbound", [need("unbound"), "-d", "-c", "unbound.conf"]),
                          ("named", [need("named"), "-4", "-g", "-c", "named.conf"])):
            log = (self.tmp / f"{name}.log").open("w")
            self.procs[name] = subprocess.Popen(cmd, cwd=self.tmp, stdout=log,
                                                stderr=subprocess.STDOUT)
        for name, addr in RESOLVERS.items():
            wait(f"{name} to answer", lambda a=addr: ask(a, "test.", "SOA") is not None, 20)

    def stop(self) -> list[str]:
        """Everything stopped; the servers' logs, for failures and tracebacks."""
        for proc in self.procs.values():
            proc.terminate()
            proc.wait(10)
        if self.nsd is not None:
            self.nsd.stop()
        for addr in self.added:  # only what this lab added: lo as it found it
            run(["ip", "addr", "del", f"{addr}/32", "dev", "lo"])
        self.added.clear()
        texts = []
        for server in self.servers.values():
            code = server.stop()
            texts.append(server.text())
            assert code == 0, server.text()[-3000:]
        return texts

    def status(self) -> dict:  # type: ignore[type-arg]
        r = sc("ctl", "--socket", self.sock, "status", ZONE, "--json", check=True)
        return json.loads(r.stdout)["zones"][0]  # type: ignore[no-any-return]

    def ctl(self, *args: str) -> str:
        return sc("ctl", "--socket", self.sock, *args, check=True).stdout


def _inline(zone: str, unsigned: Path, keys: Path, policy: str) -> str:
    return f'[zones."{zone}"]\nunsigned = "{unsigned}"\nkeys = "{keys}"\npolicy = "{policy}"\n'


def _unbound_conf(d: Path) -> str:
    return f"""server:
\tusername: ""
\tchroot: ""
\tdirectory: "{d}"
\tpidfile: "{d}/unbound.pid"
\tuse-syslog: no
\tverbosity: 1
\tval-log-level: 2
\tlog-servfail: yes
\tinterface: {UNBOUND}
\tport: 53
\tinterface-automatic: no
\tdo-ip6: no
\taccess-control: 127.0.0.0/8 allow
\tdo-not-query-localhost: no
\tlocal-zone: "test." nodefault
\troot-hints: "{d}/root.hints"
\ttrust-anchor-file: "{d}/anchor.ds"
\tmodule-config: "validator iterator"
\tharden-dnssec-stripped: yes
\tprefetch: no
\tcache-max-ttl: {CACHE_TTL}
\tcache-max-negative-ttl: {CACHE_TTL}
\tnum-threads: 1
remote-control:
\tcontrol-enable: no
"""


def _named_conf(d: Path) -> str:
    return f"""options {{
\tdirectory "{d}";
\tpid-file "{d}/named.pid";
\tsession-keyfile "{d}/named.session.key";
\tmanaged-keys-directory "{d}";
\tlisten-on port 53 {{ {NAMED}; }};
\tlisten-on-v6 {{ none; }};
\trecursion yes;
\tallow-query {{ 127.0.0.0/8; }};
\tallow-recursion {{ 127.0.0.0/8; }};
\tdnssec-validation yes;
\tnotify no;
\tempty-zones-enable no;
\tmax-cache-ttl {CACHE_TTL};
\tmax-ncache-ttl {CACHE_TTL};
}};
controls {{ }};
zone "." {{ type hint; file "{d}/root.hints"; }};
include "{d}/anchor.conf";
"""


def ask(resolver: str, qname: str, qtype: str) -> dns.message.Message | None:
    q = dns.message.make_query(qname, qtype, want_dnssec=True)
    try:
        return dns.query.udp(q, resolver, port=53, timeout=2, source="127.64.9.9")
    except (dns.exception.DNSException, OSError):
        return None


def wait(what: str, test: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


class Querier(threading.Thread):
    """Asks each resolver for www.example.test A (NOERROR) and a new name each time
    (NXDOMAIN), with DO, every `every` seconds; any other answer, or one without AD, is kept
    in `bad` as (seconds since start, resolver, qname, what)."""

    def __init__(self, every: float = 0.25):
        super().__init__(daemon=True)
        self.every, self.asked, self.bad = every, 0, []  # type: list[tuple[float, str, str, str]]
        self.timeouts: list[tuple[float, str, str]] = []
        self.halt = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            n += 1
            for name, addr in RESOLVERS.items():
                for qname, want in ((f"www.{ZONE}", dns.rcode.NOERROR),
                                    (f"nx{n}.{ZONE}", dns.rcode.NXDOMAIN)):
                    self._check(name, addr, qname, want)
            self.halt.wait(self.every)

    def _check(self, name: str, addr: str, qname: str, want: int) -> None:
        self.asked += 1
        at = round(time.monotonic() - self.t0, 1)
        r = ask(addr, qname, "A")
        if r is None:
            self.timeouts.append((at, name, qname))
        elif r.rcode() != want or not r.flags & dns.flags.AD:
            self.bad.append((at, name, qname, f"{dns.rcode.to_text(r.rcode())} "
                             f"ad={bool(r.flags & dns.flags.AD)}"))

    def stop(self) -> None:
        self.halt.set()
        self.join(10)
