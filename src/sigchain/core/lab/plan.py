"""What `lab up` and `lab down` must do (pure): from the lab's state, what the executor
observed and `now`, the typed actions in the order they must run, each with its reason."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import dns.name
import dns.rdata
import dns.rdtypes.ANY.DNSKEY

from sigchain.core.dnssec import ds
from sigchain.core.lab import hierarchy
from sigchain.core.lab.hierarchy import LabPaths, LabZone, SigTimes
from sigchain.core.lab.state import LabState
from sigchain.core.sign.apex import next_serial
from sigchain.model.keys import FLAG_SEP

# The lab's SOA serials follow the signer's `unixtime` rule: the time, or one more than the
# last serial when the time is not ahead of it (a lab rebuilt twice in a second still moves).
SERIAL_POLICY = "unixtime"

DNSKEY = dns.rdtypes.ANY.DNSKEY.DNSKEY


# ---- what the executor saw ----------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneFiles:
    """A zone's files on disk: both present, and the served file's signature times
    (None when it is unreadable or carries no RRSIG)."""

    unsigned: bool = False
    served: bool = False
    sig_times: SigTimes | None = None


@dataclass(frozen=True)
class Observed:
    """What the executor found before planning. Keys are by zone name (text); a zone with no
    entry in `keys` has no key files yet."""

    addresses: frozenset[str] = frozenset()  # IPv4 addresses on lo
    alive: frozenset[str] = frozenset()  # recorded processes that still run and are ours
    port_problems: Mapping[str, str] = field(default_factory=dict)  # address -> why port 53 is busy
    keys: Mapping[str, tuple[DNSKEY, ...]] = field(default_factory=dict)
    decoy_keys: Mapping[str, tuple[DNSKEY, ...]] = field(default_factory=dict)
    zone_files: Mapping[str, ZoneFiles] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)  # config file name -> sha256 of its text
    generated: frozenset[str] = frozenset()  # zones whose keys this run generated


@dataclass(frozen=True)
class UpRequest:
    """What `lab up` was asked for, and where: the paths and the program that serves zones."""

    paths: LabPaths
    resolver: str
    fresh: bool = False
    serve_program: tuple[str, ...] = ("sigchain",)

    def server_cmd(self, z: LabZone) -> tuple[str, ...]:
        return (*self.serve_program, *hierarchy.serve_args(z, self.paths))


# ---- actions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One step; `because` says why. `describe()` is its dry-run line, `to_json()` its
    object (file texts are left out: they can be long, and the dry run writes nothing)."""

    because: str

    def describe(self) -> str:
        return f"{self.verb()} ({self.because})"

    template: ClassVar[str] = ""  # the dry-run line, formatted with the action's fields

    def verb(self) -> str:
        return self.template.format(**{f.name: getattr(self, f.name) for f in fields(self)})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": type(self).__name__}
        for f in fields(self):
            if f.name != "text":
                out[f.name] = getattr(self, f.name)
        return out


@dataclass(frozen=True)
class RemoveKeysAndZones(Action):
    template: ClassVar[str] = "remove every key and zone file"


@dataclass(frozen=True)
class GenerateKey(Action):
    zone: str
    role: str  # "ksk" or "zsk"
    decoy: bool = False  # a KSK the zone never publishes, for a parent's broken DS

    def verb(self) -> str:
        return f"generate a {'decoy ' if self.decoy else ''}{self.role.upper()} for {self.zone}"


@dataclass(frozen=True)
class WriteZone(Action):
    """The unsigned master file; `text` is None while the keys it depends on do not exist
    yet (the executor plans again once they do)."""

    zone: str
    serial: int
    fingerprint: str | None
    text: str | None

    template: ClassVar[str] = "write zone {zone} serial {serial}"


@dataclass(frozen=True)
class SignZone(Action):
    zone: str

    template: ClassVar[str] = "sign {zone}"


@dataclass(frozen=True)
class WriteFile(Action):
    name: str  # a file in the lab directory
    text: str | None  # None: holds the trust anchor of root keys not generated yet

    template: ClassVar[str] = "write {name}"


@dataclass(frozen=True)
class AddAddress(Action):
    address: str

    template: ClassVar[str] = "add {address}/32 to lo"


@dataclass(frozen=True)
class StopProcess(Action):
    """Stop a lab process before it is started again."""

    name: str

    template: ClassVar[str] = "stop {name}"


@dataclass(frozen=True)
class StartServer(Action):
    zone: str
    address: str
    name: str
    cmd: tuple[str, ...]

    template: ClassVar[str] = "start {name} serving {zone}"


@dataclass(frozen=True)
class ReloadServer(Action):
    zone: str
    name: str

    template: ClassVar[str] = "reload {name} ({zone})"


@dataclass(frozen=True)
class WaitServing(Action):
    """A health check: the server answers the zone's SOA with `serial`."""

    zone: str
    name: str
    serial: int

    template: ClassVar[str] = "check {name} serves {zone} serial {serial}"


@dataclass(frozen=True)
class RetireResolver(Action):
    """Stop a resolver that is not the one asked for."""

    kind: str

    template: ClassVar[str] = "stop resolver {kind}"


@dataclass(frozen=True)
class FlushResolver(Action):
    kind: str

    def verb(self) -> str:
        return f"flush resolver {self.kind}'s cache"


@dataclass(frozen=True)
class StartResolver(Action):
    kind: str
    address: str
    config: str | None  # fingerprint of its config; None until the new anchor exists

    template: ClassVar[str] = "start resolver {kind} on {address}"


@dataclass(frozen=True)
class RemoveAddress(Action):
    address: str
    present: bool  # still on lo (else only forgotten)

    def verb(self) -> str:
        return f"remove {self.address}/32 from lo" if self.present else f"forget {self.address}"


@dataclass(frozen=True)
class Plan:
    """`build` makes files (nothing runs yet); `run` brings processes and addresses in line.
    A `refusal` means: do nothing, say this."""

    build: tuple[Action, ...] = ()
    run: tuple[Action, ...] = ()
    refusal: str | None = None
    anchor: tuple[str, ...] | None = None  # the trust anchor's DS lines; None: not known yet
    anchor_changed: bool = False
    wake_at: int | None = None  # epoch seconds: plan again by then (a signed zone is due)

    @property
    def actions(self) -> tuple[Action, ...]:
        return self.build + self.run

    def needs_keys(self) -> bool:
        """Whether keys are made first, after which the rest must be planned again."""
        return any(isinstance(a, RemoveKeysAndZones | GenerateKey) for a in self.build)


# ---- lab up ---------------------------------------------------------------------------------------


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def wanted_addresses(resolver: str) -> list[str]:
    return hierarchy.server_addresses() + list(lab_resolvers(resolver).values())


def lab_resolvers(resolver: str) -> dict[str, str]:
    """The resolvers the lab runs with `--resolver`: the one chosen and sigchain's beside it
    (none with `none`), by kind → address."""
    if resolver not in hierarchy.RESOLVERS:
        return {}
    return dict([(resolver, hierarchy.RESOLVERS[resolver]), hierarchy.SIGCHAIN_RESOLVER])


def refusal(state: LabState, observed: Observed, resolver: str) -> str | None:
    """Ports another program holds (those held by this lab's own live processes are fine)."""
    held = {rec.address for name, rec in state.processes.items() if name in observed.alive}
    problems = [observed.port_problems[a] for a in wanted_addresses(resolver)
                if a not in held and a in observed.port_problems]
    return "cannot bring the lab up: " + "; ".join(problems) if problems else None


def plan_up(state: LabState, observed: Observed, now: int, request: UpRequest) -> Plan:
    """Everything `lab up` does, in order; a function of its arguments only."""
    why_not = refusal(state, observed, request.resolver)
    if why_not is not None:
        return Plan(refusal=why_not)
    build: list[Action] = []
    if request.fresh:
        build.append(RemoveKeysAndZones("--fresh: new keys and a new trust anchor"))
        observed = Observed(observed.addresses, observed.alive, observed.port_problems,
                            files=observed.files)
        state = state.forget_fingerprints()
    build += _key_actions(observed)
    generated = observed.generated | {a.zone for a in build if isinstance(a, GenerateKey)}
    keys = _KeyView(observed, generated)
    writes = _zone_actions(state, observed, now, keys)
    build += writes
    build += [SignZone(w.because, w.zone) for w in writes if hierarchy.zone(w.zone).signed]
    anchor = _anchor_lines(keys)
    texts = config_texts(request.paths, keys.ds_keys(hierarchy.ROOT))
    build += _file_actions(observed, texts)
    changed = {w.zone for w in writes}
    anchor_changed = anchor is None or anchor != state.anchor
    run: list[Action] = [AddAddress("not on lo", a) for a in wanted_addresses(request.resolver)
                         if a not in observed.addresses]
    run += _server_actions(state, observed, request, changed, writes)
    run += _resolver_actions(state, observed, request, bool(changed) or anchor_changed, texts)
    return Plan(tuple(build), tuple(run), None, anchor, anchor_changed,
                _wake_at(observed, {w.zone for w in writes}, now))


def _wake_at(observed: Observed, rewritten: set[str], now: int) -> int | None:
    """When the first signed zone passes half its signature validity, counting the zones this
    plan signs as signed at `now`; None when no signed zone's times are known."""
    dues = []
    for z in hierarchy.ZONES:
        name = z.name.to_text()
        if not z.signed:
            continue
        times = (hierarchy.fresh_signature_times(now) if name in rewritten
                 else observed.zone_files.get(name, ZoneFiles()).sig_times)
        if times is not None:
            dues.append(hierarchy.resign_time(times))
    return min(dues, default=None)


class _KeyView:
    """The zones' DNSKEYs as they will be: None for keys the plan generates first."""

    def __init__(self, observed: Observed, generated: frozenset[str] | set[str]):
        self.observed = observed
        self.generated = generated

    def own(self, z: LabZone) -> tuple[DNSKEY, ...] | None:
        return self.observed.keys.get(z.name.to_text()) if z.signed else ()

    def ds_keys(self, z: LabZone) -> tuple[DNSKEY, ...] | None:
        """The KSKs whose DS the parent publishes (a decoy's for a broken DS)."""
        keys = (self.observed.decoy_keys if z.broken_ds else self.observed.keys).get(z.name.to_text())
        return None if keys is None else tuple(k for k in keys if k.flags & FLAG_SEP)

    def child_ds(self, z: LabZone) -> dict[dns.name.Name, list[dns.rdata.Rdata]] | None:
        out: dict[dns.name.Name, list[dns.rdata.Rdata]] = {}
        for c in hierarchy.children(z):
            if not c.signed:
                continue
            ksks = self.ds_keys(c)
            if ksks is None:
                return None
            out[c.name] = [ds.make_ds(c.name, k, hierarchy.DS_DIGEST) for k in ksks]
        return out


def _key_actions(observed: Observed) -> list[Action]:
    out: list[Action] = []
    for z in hierarchy.ZONES:
        name = z.name.to_text()
        if z.signed and name not in observed.keys:
            out += [GenerateKey("the zone has no keys", name, r) for r in ("ksk", "zsk")]
        if z.broken_ds and name not in observed.decoy_keys:
            out.append(GenerateKey("its parent's DS must match no key", name, "ksk", decoy=True))
    return out


def _zone_actions(state: LabState, observed: Observed, now: int, keys: _KeyView) -> list[WriteZone]:
    """The zones to write (and sign), deepest first, and why; the others are kept."""
    out = []
    for z in hierarchy.bottom_up():
        name = z.name.to_text()
        own, child_ds = keys.own(z), keys.child_ds(z)
        fp = None
        if own is not None and child_ds is not None:
            fp = hierarchy.fingerprint(hierarchy.zone_text(z, 0, child_ds), own, z.denial)
        prev = state.zones.get(name)
        reason = _rebuild_reason(z, observed.zone_files.get(name, ZoneFiles()),
                                 prev.fingerprint if prev else None, fp, name in keys.generated, now)
        if reason is None:
            continue
        serial = next_serial(prev.serial if prev else 0, SERIAL_POLICY, now)
        text = hierarchy.zone_text(z, serial, child_ds) if fp is not None and child_ds is not None else None
        out.append(WriteZone(reason, name, serial, fp, text))
    return out


def _rebuild_reason(z: LabZone, files: ZoneFiles, previous: str | None, fp: str | None,
                    new_keys: bool, now: int) -> str | None:
    if not files.served or not files.unsigned:
        return "new"
    if fp is None or previous != fp:
        return "new keys" if new_keys else "changed"
    if not z.signed:
        return None
    if files.sig_times is None:
        return "unreadable"
    if hierarchy.past_half_validity(files.sig_times, now):
        return "past half validity"
    return None


def _anchor_lines(keys: _KeyView) -> tuple[str, ...] | None:
    ksks = keys.ds_keys(hierarchy.ROOT)
    if ksks is None:
        return None
    text = hierarchy.anchor_ds_text(hierarchy.anchor_ds(ksks))
    return tuple(ln for ln in text.splitlines() if not ln.startswith(";"))


def config_texts(paths: LabPaths, root_ksks: tuple[DNSKEY, ...] | None) -> dict[str, str | None]:
    """The lab directory's config files; those that hold the anchor are None without root keys."""
    anchors = None if root_ksks is None else hierarchy.anchor_ds(root_ksks)
    return {
        "anchor.ds": None if anchors is None else hierarchy.anchor_ds_text(anchors),
        "anchor.conf": None if anchors is None else hierarchy.anchor_conf_text(anchors),
        "root.hints": hierarchy.root_hints_text(),
        "unbound.conf": hierarchy.unbound_conf(paths),
        "named.conf": None if anchors is None else hierarchy.named_conf(paths, anchors),
        "sigchain-resolver.toml": hierarchy.sigchain_resolver_conf(paths),
    }


def _file_actions(observed: Observed, texts: Mapping[str, str | None]) -> list[WriteFile]:
    out = []
    for name, text in texts.items():
        if text is None:
            out.append(WriteFile("a new trust anchor", name, None))
        elif name not in observed.files:
            out.append(WriteFile("missing", name, text))
        elif observed.files[name] != sha256(text):
            out.append(WriteFile("changed", name, text))
    return out


def _server_actions(state: LabState, observed: Observed, request: UpRequest, changed: set[str],
                    writes: list[WriteZone]) -> list[Action]:
    """Start what does not run (or runs another command), reload what serves a changed zone;
    then check that every server answers with its zone's serial."""
    out: list[Action] = []
    serials = {w.zone: w.serial for w in writes}
    checks: list[Action] = []
    for z in hierarchy.ZONES:
        zname, name, cmd = z.name.to_text(), hierarchy.server_name(z), request.server_cmd(z)
        rec = state.processes.get(name)
        if rec and name in observed.alive and rec.cmd == cmd:
            if zname in changed:
                out.append(ReloadServer("its zone changed", zname, name))
        else:
            if rec:
                why = "not running" if name not in observed.alive else "started with another command"
                out.append(StopProcess(why, name))
            out.append(StartServer("not running" if not rec else "restart", zname, z.address, name, cmd))
        prev = state.zones.get(zname)
        serial = serials.get(zname, prev.serial if prev else 0)
        checks.append(WaitServing("health check", zname, name, serial))
    return out + checks


def _resolver_actions(state: LabState, observed: Observed, request: UpRequest,
                      zones_changed: bool, texts: Mapping[str, str | None]) -> list[Action]:
    out: list[Action] = []
    wanted = lab_resolvers(request.resolver)
    for kind, address in [*hierarchy.RESOLVERS.items(), hierarchy.SIGCHAIN_RESOLVER]:
        rec = state.processes.get(kind)
        if kind not in wanted:
            if rec:
                out.append(RetireResolver(f"the lab's resolver is now {request.resolver}", kind))
            continue
        config = resolver_config(kind, texts)
        if rec and kind in observed.alive and config is not None and rec.config == config:
            if not zones_changed:
                continue
            if kind != "named":  # Unbound: unbound-control; sigchain: SIGHUP
                out.append(FlushResolver("zones or the trust anchor changed", kind))
                continue
            out.append(StopProcess("zones or the trust anchor changed: named starts afresh", kind))
        elif rec:
            out.append(StopProcess("not running" if kind not in observed.alive
                                   else "its configuration changed", kind))
        out.append(StartResolver("not running" if not rec else "restart", kind, address, config))
    return out


def resolver_config(kind: str, texts: Mapping[str, str | None]) -> str | None:
    """Fingerprint of a resolver's config and the anchor it reads (None: anchor not known yet)."""
    conf, anchor = texts[hierarchy.RESOLVER_CONFIGS[kind]], texts["anchor.ds"]
    return None if conf is None or anchor is None else sha256(conf + anchor)[:32]


# ---- lab down -------------------------------------------------------------------------------------


def plan_down(state: LabState, observed: Observed, because: str = "lab down") -> tuple[Action, ...]:
    """Stop every process the lab recorded, then remove (or forget) every address it added."""
    stops: list[Action] = [StopProcess(because, name) for name in state.processes]
    return (*stops, *(RemoveAddress(because, a, a in observed.addresses) for a in state.added_addresses))
