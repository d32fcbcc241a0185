"""The lab hierarchy (pure): which zones, served where, with which records; the texts of the
files it writes (zones, root hints, trust anchor, resolver configs); when to re-sign.

    .                      127.53.0.1   signed, NSEC         the lab root; anchor = DS of its KSK
    test.                  127.53.0.2   signed, NSEC3        the TLD: delegates everything below
    example.test.          127.53.0.3   signed, NSEC3
    nsec.test.             127.53.0.4   signed, NSEC
    insecure.test.         127.53.0.5   unsigned             no DS at the parent: insecure
    optout.test.           127.53.0.6   signed, NSEC3 opt-out  parent of an unsigned child
    unsigned.optout.test.  127.53.0.7   unsigned             the opt-out child
    dnssec-failed.test.    127.53.0.8   signed, NSEC         the DS at the parent matches no key

Resolvers of the lab listen on 127.53.1.x; the records' own addresses are 127.53.2-4.x, so
nothing the lab hands out points off the machine. Every address here is loopback.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS

from sigchain.core.dnssec import ds
from sigchain.errors import InputError

N = dns.name.from_text

LAB_NET = ipaddress.ip_network("127.53.0.0/16")
PORT = 53
TTL = 300  # short: a lab changes, and resolvers should notice
SIG_VALIDITY = 30 * 86400
SIG_JITTER = 86400
SIG_BACKDATE = 3600  # inception = now - 1h, for clocks a little behind
ALGORITHM = 13  # ECDSAP256SHA256
DS_DIGEST = 2  # SHA-256
ROOT_SERVER = N("a.root-servers.lab.")
RESOLVERS = {"unbound": "127.53.1.1", "named": "127.53.1.2"}
# sigchain's own resolver runs beside the one chosen (not with --resolver none)
SIGCHAIN_RESOLVER = ("sigchain-resolver", "127.53.1.3")
RESOLVER_CONFIGS = {"unbound": "unbound.conf", "named": "named.conf",
                    "sigchain-resolver": "sigchain-resolver.toml"}


class Denial(enum.Enum):
    NSEC = "nsec"
    NSEC3 = "nsec3"
    NSEC3_OPTOUT = "nsec3-optout"
    UNSIGNED = "unsigned"


@dataclass(frozen=True)
class LabZone:
    name: dns.name.Name
    address: str  # the one server address that serves this zone (and nothing else)
    denial: Denial
    parent: dns.name.Name | None
    index: int  # picks the zone's record addresses
    about: str
    broken_ds: bool = False  # the parent publishes a DS for a key the zone never uses

    @property
    def signed(self) -> bool:
        return self.denial is not Denial.UNSIGNED

    @property
    def stem(self) -> str:
        """File-name stem: `root` for the root, else the name without the final dot."""
        return "root" if self.name == dns.name.root else self.name.to_text(omit_final_dot=True)

    @property
    def ns(self) -> dns.name.Name:
        return ROOT_SERVER if self.name == dns.name.root else N("ns1", self.name)

    @property
    def data(self) -> bool:
        """Whether the zone carries the usual records (www, mail, web, *.wild, MX, TXT)."""
        return self.name != dns.name.root


ZONES: tuple[LabZone, ...] = (
    LabZone(N("."), "127.53.0.1", Denial.NSEC, None, 1, "root, signed (NSEC)"),
    LabZone(N("test."), "127.53.0.2", Denial.NSEC3, N("."), 2, "TLD, signed (NSEC3)"),
    LabZone(N("example.test."), "127.53.0.3", Denial.NSEC3, N("test."), 3, "signed (NSEC3)"),
    LabZone(N("nsec.test."), "127.53.0.4", Denial.NSEC, N("test."), 4, "signed (NSEC)"),
    LabZone(N("insecure.test."), "127.53.0.5", Denial.UNSIGNED, N("test."), 5,
            "unsigned delegation (no DS)"),
    LabZone(N("optout.test."), "127.53.0.6", Denial.NSEC3_OPTOUT, N("test."), 6,
            "signed (NSEC3 opt-out), parent of an unsigned child"),
    LabZone(N("unsigned.optout.test."), "127.53.0.7", Denial.UNSIGNED, N("optout.test."), 7,
            "unsigned child of an opt-out zone"),
    LabZone(N("dnssec-failed.test."), "127.53.0.8", Denial.NSEC, N("test."), 8,
            "broken: the DS at the parent matches no key", broken_ds=True),
)
ROOT = ZONES[0]


def zone(name: dns.name.Name | str) -> LabZone:
    name = N(name) if isinstance(name, str) else name
    for z in ZONES:
        if z.name == name:
            return z
    raise InputError(f"{name} is not a lab zone")


def children(parent: LabZone) -> list[LabZone]:
    return [z for z in ZONES if z.parent == parent.name]


def bottom_up() -> list[LabZone]:
    """Zones deepest first, so each child's DS is known before its parent is built."""
    return sorted(ZONES, key=lambda z: -len(z.name))


def server_addresses() -> list[str]:
    return [z.address for z in ZONES]


def record_addresses(z: LabZone) -> dict[str, str]:
    i = z.index
    return {"www": f"127.53.2.{i}", "mail": f"127.53.3.{i}", "wild": f"127.53.4.{i}"}


# ---- zone texts ------------------------------------------------------------------------------


def zone_text(z: LabZone, serial: int, child_ds: Mapping[dns.name.Name, Sequence[dns.rdata.Rdata]]) -> str:
    """The unsigned master file of `z`: SOA, NS and glue, the usual records, and for each
    child zone a delegation with glue and the DS records given in `child_ds`."""
    origin = z.name.to_text()
    ns = z.ns.to_text()
    lines = [
        f"; sigchain lab: {origin} ({z.about}), served on {z.address}",
        f"$ORIGIN {origin}",
        f"$TTL {TTL}",
        f"{origin} IN SOA {ns} hostmaster.{'sigchain.lab.' if z.name == dns.name.root else origin} "
        f"{serial} 3600 600 604800 {TTL}",
        f"{origin} IN NS {ns}",
        f"{ns} IN A {z.address}",
        f'{origin} IN TXT "sigchain lab zone {origin}: {z.about}"',
    ]
    if z.data:
        a = record_addresses(z)
        lines += [
            f"{origin} IN MX 10 mail.{origin}",
            f"www.{origin} IN A {a['www']}",
            f"www.{origin} IN AAAA ::ffff:{a['www']}",
            f"mail.{origin} IN A {a['mail']}",
            f"web.{origin} IN CNAME www.{origin}",
            f"*.wild.{origin} IN A {a['wild']}",
            f'*.wild.{origin} IN TXT "wildcard in {origin}"',
        ]
    for child in children(z):
        cname, cns = child.name.to_text(), child.ns.to_text()
        lines.append(f"; delegation to {cname} ({child.about})")
        lines.append(f"{cname} IN NS {cns}")
        for rd in child_ds.get(child.name, ()):
            lines.append(f"{cname} IN DS {rd.to_text()}")
        lines.append(f"{cns} IN A {child.address}")
    return "\n".join(lines) + "\n"


def fingerprint(text: str, dnskeys: Iterable[dns.rdtypes.ANY.DNSKEY.DNSKEY], denial: Denial) -> str:
    """What a zone's signed file depends on besides time: its unsigned text (serial left
    out), its keys and its denial. Equal fingerprints: no need to re-sign for content."""
    h = hashlib.sha256()
    h.update(denial.value.encode())
    h.update(text.encode())
    for k in sorted(rd.to_text() for rd in dnskeys):
        h.update(k.encode())
    return h.hexdigest()[:32]


# ---- signatures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigTimes:
    inception: int  # latest inception among the zone's RRSIGs
    expiration: int  # earliest expiration
    count: int


def signature_times(nodes: Mapping[dns.name.Name, Iterable[object]]) -> SigTimes | None:
    """Inception and earliest expiry over every RRSIG of a zone (None if it has none)."""
    inception, expiration, count = 0, None, 0
    for rdatasets in nodes.values():
        for rds in rdatasets:
            if getattr(rds, "rdtype", None) != dns.rdatatype.RRSIG:
                continue
            for rd in rds:  # type: ignore[attr-defined]
                count += 1
                inception = max(inception, rd.inception)
                expiration = rd.expiration if expiration is None else min(expiration, rd.expiration)
    if expiration is None:
        return None
    return SigTimes(inception, expiration, count)


def resign_time(times: SigTimes) -> int:
    """When half the time from inception to the earliest expiry has gone by: the lab re-signs
    from then on, leaving the other half for caches and a late `lab up`."""
    return times.inception + (times.expiration - times.inception) // 2


def past_half_validity(times: SigTimes, now: int) -> bool:
    return now >= resign_time(times)


def fresh_signature_times(now: int) -> SigTimes:
    """The worst case of a zone the lab signs at `now`: the earliest expiry any jitter allows."""
    inception = now - SIG_BACKDATE
    return SigTimes(inception, inception + SIG_VALIDITY - SIG_JITTER, 0)


# ---- trust anchor, hints and resolver configurations ----------------------------------------------


def anchor_ds(root_ksks: Sequence[dns.rdtypes.ANY.DNSKEY.DNSKEY]) -> list[dns.rdtypes.ANY.DS.DS]:
    return [ds.make_ds(dns.name.root, k, DS_DIGEST) for k in root_ksks]


def anchor_ds_text(anchors: Sequence[dns.rdtypes.ANY.DS.DS]) -> str:
    """anchor.ds: zone-file form, as dnssec-dsfromkey prints it (with a TTL for Unbound)."""
    lines = ["; sigchain lab trust anchor: DS of the lab root's KSK"]
    for rd in anchors:
        lines.append(f". {TTL} IN DS {rd.key_tag} {rd.algorithm} {rd.digest_type} {rd.digest.hex().upper()}")
    return "\n".join(lines) + "\n"


def trust_anchors_clause(anchors: Sequence[dns.rdtypes.ANY.DS.DS]) -> str:
    lines = ["trust-anchors {"]
    for rd in anchors:
        lines.append(f'\t. static-ds {rd.key_tag} {rd.algorithm} {rd.digest_type} "{rd.digest.hex().upper()}";')
    lines.append("};")
    return "\n".join(lines) + "\n"


def anchor_conf_text(anchors: Sequence[dns.rdtypes.ANY.DS.DS]) -> str:
    """anchor.conf: BIND `trust-anchors` form, for `delv -a` and named."""
    return "# sigchain lab trust anchor: DS of the lab root's KSK\n" + trust_anchors_clause(anchors)


def root_hints_text() -> str:
    """root.hints for the lab root only: one server, IPv4 loopback, no IPv6."""
    ns = ROOT_SERVER.to_text()
    return (
        "; sigchain lab root hints: the lab root server only\n"
        f".\t3600000\tIN\tNS\t{ns}\n"
        f"{ns}\t3600000\tIN\tA\t{ROOT.address}\n"
    )


def check_dir_text(directory: str) -> None:
    """The lab directory goes into quoted config strings: refuse what would break them."""
    if not directory.startswith("/"):
        raise InputError(f"lab directory must be an absolute path: {directory!r}")
    bad = [c for c in directory if c in '"\\;{}#' or not c.isprintable() or c.isspace()]
    if bad:
        raise InputError(
            f"lab directory {directory!r} has characters that break resolver configs: "
            + " ".join(repr(c) for c in sorted(set(bad)))
        )


@dataclass(frozen=True)
class LabPaths:
    """Where the lab keeps things, under one absolute directory (pure path arithmetic)."""

    root: str

    def __post_init__(self) -> None:
        check_dir_text(self.root)

    def path(self, *parts: str) -> str:
        return "/".join((self.root.rstrip("/"), *parts))

    @property
    def state(self) -> str:
        return self.path("lab.json")

    def keys(self, z: LabZone) -> str:
        return self.path("keys", z.stem)

    def decoy_keys(self, z: LabZone) -> str:
        return self.path("keys", z.stem + ".decoy")

    def unsigned(self, z: LabZone) -> str:
        return self.path("zones", f"{z.stem}.zone")

    def served(self, z: LabZone) -> str:
        return self.path("zones", f"{z.stem}.signed" if z.signed else f"{z.stem}.zone")

    def pidfile(self, name: str) -> str:
        return self.path("run", f"{name}.pid")

    def log(self, name: str) -> str:
        return self.path("logs", f"{name}.log")

    @property
    def unbound_control(self) -> str:
        return self.path("run", "unbound.ctl")


def server_name(z: LabZone) -> str:
    return f"serve-{z.address}"


def serve_args(z: LabZone, paths: LabPaths) -> list[str]:
    """`sigchain serve` arguments for the one server of `z` (after the program)."""
    return ["serve", "--listen", f"{z.address}#{PORT}", "--zone", f"{z.name.to_text()}={paths.served(z)}"]


def unbound_conf(paths: LabPaths) -> str:
    """A validating Unbound for the lab, runnable as `unbound -c DIR/unbound.conf` (as root)."""
    d = paths.root
    return f"""\
# sigchain lab: validating Unbound on {RESOLVERS['unbound']}, trusting only the lab root.
# Run: unbound -d -c {paths.path('unbound.conf')}   (sigchain lab up does this)
# Flush: unbound-control -c {paths.path('unbound.conf')} flush_zone .
server:
\tusername: ""
\tchroot: ""
\tdirectory: "{d}"
\tpidfile: "{paths.pidfile('unbound')}"
\tlogfile: "{paths.log('unbound')}"
\tuse-syslog: no
\tverbosity: 1
\tval-log-level: 2
\tlog-servfail: yes
\tinterface: {RESOLVERS['unbound']}
\tport: {PORT}
\tinterface-automatic: no
\tdo-ip4: yes
\tdo-ip6: no
\tdo-udp: yes
\tdo-tcp: yes
\taccess-control: 127.0.0.0/8 allow
\t# the lab's servers are on loopback, which Unbound refuses to query by default
\tdo-not-query-localhost: no
\t# Unbound answers the special-use test. itself unless told not to
\tlocal-zone: "test." nodefault
\troot-hints: "{paths.path('root.hints')}"
\ttrust-anchor-file: "{paths.path('anchor.ds')}"
\tmodule-config: "validator iterator"
\tharden-dnssec-stripped: yes
\taggressive-nsec: yes
\tprefetch: no
\tcache-max-ttl: {TTL}
\tcache-max-negative-ttl: {TTL}
\tnum-threads: 1

remote-control:
\tcontrol-enable: yes
\tcontrol-interface: "{paths.unbound_control}"
\tcontrol-use-cert: no
"""


def sigchain_resolver_conf(paths: LabPaths) -> str:
    """`sigchain resolver --config DIR/sigchain-resolver.toml`: validating from the lab root's
    anchor (static, as Unbound's trust-anchor-file), TTLs capped as Unbound's are."""
    kind, addr = SIGCHAIN_RESOLVER
    return f"""\
# sigchain lab: sigchain's validating resolver on {addr}, trusting only the lab root.
# Run: sigchain resolver --config {paths.path(RESOLVER_CONFIGS[kind])}   (sigchain lab up does this)
# Flush: kill -HUP its pid (it re-reads this file and empties its cache)
listen = "{addr}#{PORT}"
anchor = "{paths.path('anchor.ds')}"
root-hints = "{paths.path('root.hints')}"
allow = ["127.0.0.0/8"]

[cache]
max-ttl = {TTL}
max-negative-ttl = {TTL}
"""


def named_conf(paths: LabPaths, anchors: Sequence[dns.rdtypes.ANY.DS.DS]) -> str:
    """A validating named for the lab, runnable as `named -4 -g -c DIR/named.conf` (as root);
    named listens only on addresses configured on an interface: 127.53.1.2 must be on lo."""
    addr = RESOLVERS["named"]
    return f"""\
// sigchain lab: validating named on {addr}, trusting only the lab root.
// Run: named -4 -g -c {paths.path('named.conf')}   (sigchain lab up does this)
// named listens only on configured addresses: ip addr add {addr}/32 dev lo
options {{
\tdirectory "{paths.root}";
\tpid-file "{paths.pidfile('named')}";
\tsession-keyfile "{paths.path('run', 'named.session.key')}";
\tmanaged-keys-directory "{paths.path('run')}";
\tlisten-on port {PORT} {{ {addr}; }};
\tlisten-on-v6 {{ none; }};
\trecursion yes;
\tallow-query {{ 127.0.0.0/8; }};
\tallow-recursion {{ 127.0.0.0/8; }};
\tallow-query-cache {{ 127.0.0.0/8; }};
\tdnssec-validation yes;
\tnotify no;
\tempty-zones-enable no;
\tmax-cache-ttl {TTL};
\tmax-ncache-ttl {TTL};
\tedns-udp-size 1232;
\tmax-udp-size 1232;
}};

controls {{ }};

zone "." {{
\ttype hint;
\tfile "{paths.path('root.hints')}";
}};

""" + trust_anchors_clause(anchors)

