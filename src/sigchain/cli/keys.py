"""`sigchain keys`: the offline key manager (as dnssec-keymgr / keymgr): run the rollover plan
for a zone's key directory, show the keys' states, take the operator's word about the parent's
DS, and start a roll."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import dns.exception
import dns.name

from sigchain.cli.common import JSON_OPTION, emit_json, handle_errors, json_keys, warn
from sigchain.clock import SYSTEM
from sigchain.core.dnssec import timefmt
from sigchain.core.rollover.durations import render
from sigchain.core.rollover.planner import Action, Plan
from sigchain.errors import InputError
from sigchain.services import keymanager

RUN_KEYS = ("zone", "now", "dry_run", "actions", "keys", "adopted", "created", "written",
            "waiting", "next_run")
STATUS_KEYS = ("zone", "now", "policy", "keys", "waiting", "due", "next_run")
OBSERVE_KEYS = ("zone", "key", "observation", "since")

KEYS_OPTION = click.option("--keys", "keydir", required=True, metavar="DIR",
                           help="Key directory (BIND K-files and the key state).")
AT_OPTION = click.option("--at", "at", default=None, metavar="TIME",
                         help="Act as if it were TIME: YYYYMMDDHHMMSS (UTC), epoch seconds or "
                              "now±DURATION (default: now).")


def _zone(text: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise InputError(f"bad zone name {text!r}: {exc}") from None


def _now(at: str | None) -> int:
    now = SYSTEM.now()
    return now if at is None else timefmt.parse_time(at, now)


def _action_json(a: Action) -> dict[str, Any]:
    return {"kind": a.kind, "key": a.key, "at": a.at, "reason": a.reason}


def _next_run(p: Plan) -> str:
    if p.wake_at is None:
        return "next run: when the parent's DS changes (keys ds-seen / ds-gone); nothing is " \
               "due by time alone"
    return f"next run: by {timefmt.format_utc(p.wake_at)} ({p.wake_at})"


@click.group()
def keys() -> None:
    """Run a zone's keys by a policy: create, publish, activate, retire and remove them."""


@keys.command()
@click.argument("zone")
@click.option("--policy", "source", required=True, metavar="FILE|NAME",
              help="The policy: a TOML file or a built-in name (default, ksk-zsk).")
@KEYS_OPTION
@AT_OPTION
@click.option("--dry-run", is_flag=True, help="Print the plan only; write nothing.")
@JSON_OPTION
@handle_errors
@json_keys(*RUN_KEYS)
def run(zone: str, source: str, keydir: str, at: str | None, dry_run: bool,
        as_json: bool) -> None:
    """Carry out the key plan for ZONE at TIME and say when to run next (cron-friendly)."""
    from sigchain.cli.policy import load
    from sigchain.core.rollover.policy import locate

    origin = _zone(zone)
    now = _now(at)
    the_policy = load(source)
    for path, problem in keymanager.unusable(the_policy)[:1]:  # a built-in one is usable
        text = Path(source).read_text(encoding="utf-8")  # load() has just read it
        raise InputError(f"{path}: {problem}", file=source,
                         line=locate(text, source, path))
    result = keymanager.run(origin, the_policy, keydir, now, dry_run=dry_run)
    waiting = [a for a in result.plan.waiting]
    done = [a for a in result.plan.actions if not a.kind.startswith("await")]
    if as_json:
        emit_json({"zone": result.zone, "now": now, "dry_run": dry_run,
                   "actions": [_action_json(a) for a in done],
                   "keys": [keymanager.key_json(sk) for sk in result.keys],
                   "adopted": list(result.adopted), "created": list(result.created),
                   "written": list(result.written),
                   "waiting": [_action_json(a) for a in waiting],
                   "next_run": result.plan.wake_at, "error": None})
        return
    verb = "would do" if dry_run else "did"
    click.echo(f"zone {result.zone} at {timefmt.format_utc(now)}: policy {the_policy.name}"
               + (" (dry run: nothing written)" if dry_run else ""))
    for key_id in result.adopted:
        click.echo(f"  adopted key {key_id} from its K-files")
    for a in done:
        click.echo(f"  {verb}: {a.kind} key {a.key}: {a.reason}")
    if not done:
        click.echo("  nothing to do now")
    for a in waiting:
        click.echo(f"  waiting: key {a.key}: {a.reason}")
    for base in result.written:
        click.echo(f"  timing metadata written: {base}")
    click.echo(_next_run(result.plan))


@keys.command()
@click.argument("zone")
@KEYS_OPTION
@AT_OPTION
@JSON_OPTION
@handle_errors
@json_keys(*STATUS_KEYS)
def status(zone: str, keydir: str, at: str | None, as_json: bool) -> None:
    """Each key's role, algorithm, tag, record states, goal and next transition."""
    st = keymanager.status(_zone(zone), keydir, _now(at))
    due = [a for a in st.plan.actions if not a.kind.startswith("await")]
    if as_json:
        emit_json({"zone": st.zone, "now": st.now, "policy": st.policy.name,
                   "keys": keymanager.status_rows(st),
                   "waiting": list(st.waiting), "due": [_action_json(a) for a in due],
                   "next_run": st.plan.wake_at, "error": None})
        return
    click.echo(f"zone {st.zone} at {timefmt.format_utc(st.now)}: policy {st.policy.name}")
    for k in st.keys:
        sk = k.stored
        states = " ".join(f"{r}={v}" for r, v in k.states.items())
        click.echo(f"  key {sk.tag} ({sk.key.role}, algorithm {sk.key.algorithm}): {states}; "
                   f"goal {k.goal}")
        if sk.key.retired is None and sk.key.revoked is None and sk.key.lifetime is not None \
                and sk.key.active is not None:
            when = "when its successor's DS is seen at the parent" if k.retire_at is None \
                else f"at {timefmt.format_utc(k.retire_at)}"
            click.echo(f"    lifetime {render(sk.key.lifetime)}: retires {when}")
        if sk.key.revoked is not None:
            assert k.leaves_at is not None
            as_tag = "" if k.revoked_tag is None else f" (published as tag {k.revoked_tag})"
            gone = "removed" if sk.key.removed is not None else "to be removed"
            since = "revoked since" if sk.key.revoked <= st.now else "to be revoked at"
            click.echo(f"    {since} {timefmt.format_utc(sk.key.revoked)}{as_tag}; "
                       f"{gone} at {timefmt.format_utc(k.leaves_at)} (RFC 5011 hold-down)")
        if k.next_at is not None:
            change = ", ".join(f"{r} → {v}" for r, v in k.next_states.items())
            click.echo(f"    next: {change} at {timefmt.format_utc(k.next_at)}")
    for line in st.waiting:
        click.echo(f"  {line}")
    if due:
        click.echo(f"  {len(due)} action(s) due now: run `sigchain keys run {st.zone} "
                   "--policy ... --keys DIR`")
    elif not st.waiting:
        click.echo("  the roll waits for nothing but time")
    click.echo(_next_run(st.plan))


def _observe(zone: str, tag: str, keydir: str, at: str | None, kind: str,
             as_json: bool) -> None:
    origin, now = _zone(zone), _now(at)
    sk = keymanager.observe(origin, keydir, tag, kind, now)
    if as_json:
        emit_json({"zone": origin.to_text(), "key": sk.key.id, "observation": kind,
                   "since": now, "error": None})
        return
    what = "published at" if kind == "ds-published" else "withdrawn from"
    click.echo(f"zone {origin}: DS of key {sk.tag} {what} every parent server since "
               f"{timefmt.format_utc(now)}; the next `keys run` acts on it")


def _one_key(*json_out: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options of a command about one key: ZONE --key TAG --keys DIR [--at] [--json]."""
    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        for deco in (json_keys(*json_out), handle_errors, JSON_OPTION, AT_OPTION, KEYS_OPTION,
                     click.option("--key", "tag", required=True,
                                  help="The key's tag (or id in the key state)."),
                     click.argument("zone")):
            fn = deco(fn)
        return fn
    return wrap


def _observation_command(name: str, kind: str, about: str) -> None:
    @keys.command(name, help=about)
    @_one_key(*OBSERVE_KEYS)
    def command(zone: str, tag: str, keydir: str, at: str | None, as_json: bool) -> None:
        _observe(zone, tag, keydir, at, kind, as_json)


_observation_command("ds-seen", "ds-published", "The key's DS is at every parent server (as "
                     "`rndc dnssec -checkds published`).")
_observation_command("ds-gone", "ds-withdrawn", "The key's DS is gone from every parent server "
                     "(as `rndc dnssec -checkds withdrawn`).")


@keys.command()
@click.argument("zone")
@click.option("--key", "tag", required=True, help="The key's tag (or id in the key state).")
@KEYS_OPTION
@AT_OPTION
@click.option("--emergency", is_flag=True,
              help="A compromised key: retire it as soon as the TTLs allow without breaking "
                   "any cached chain.")
@click.option("--within", default=None, metavar="DUR",
              help="With --emergency: it must be out of use within DUR; refused (exit 4) when "
                   "the TTLs do not allow it.")
@click.option("--force", is_flag=True,
              help="With --within: take the key out of use by then even though cached records "
                   "will fail to validate.")
@handle_errors
def roll(zone: str, tag: str, keydir: str, at: str | None, emergency: bool,
         within: str | None, force: bool) -> None:
    """Start rolling a key now (as `rndc dnssec -rollover`); the next run makes its successor."""
    origin, now = _zone(zone), _now(at)
    if (within is not None or force) and not emergency:
        raise InputError("--within and --force apply to --emergency rolls only")
    limit = None if within is None else timefmt.parse_duration(within)
    started = keymanager.start_roll(origin, keydir, tag, now, emergency=emergency,
                                    within=limit, force=force)
    sk = started.stored
    if not emergency:
        click.echo(f"zone {origin}: roll of key {sk.tag} ({sk.key.role}) starts at "
                   f"{timefmt.format_utc(now)}; run `sigchain keys run` to create its successor")
        return
    assert started.earliest is not None
    click.echo(f"zone {origin}: emergency roll of key {sk.tag} ({sk.key.role}): it can stop "
               f"signing at the earliest at {timefmt.format_utc(started.earliest)} "
               f"({started.why})")
    if started.deadline is not None:
        warn(f"forced: key {sk.tag} leaves at {timefmt.format_utc(started.deadline)}, before "
             "caches can follow; resolvers holding its records will fail to validate")
    click.echo(f"run `sigchain keys run {origin} ...` now, and again when it says")


@keys.command()
@_one_key("zone", "key", "tag", "revoked_tag", "revoked", "leaves_at")
def revoke(zone: str, tag: str, keydir: str, at: str | None, as_json: bool) -> None:
    """Revoke a trust point's KSK/CSK (RFC 5011, as dnssec-settime -R): published with the
    REVOKE bit and self-signed for the hold-down, then removed. Refused (exit 4) unless
    another KSK is in every cache."""
    origin, now = _zone(zone), _now(at)
    sk = keymanager.revoke(origin, keydir, tag, now)
    st = keymanager.status(origin, keydir, now)
    row = next(k for k in st.keys if k.stored.key.id == sk.key.id)
    assert row.leaves_at is not None
    if as_json:
        emit_json({"zone": origin.to_text(), "key": sk.key.id, "tag": sk.tag,
                   "revoked_tag": row.revoked_tag, "revoked": now, "leaves_at": row.leaves_at,
                   "error": None})
        return
    click.echo(f"zone {origin}: key {sk.tag} ({sk.key.role}) revoked at "
               f"{timefmt.format_utc(now)}: published as tag {row.revoked_tag} with the REVOKE "
               f"bit and signing itself until {timefmt.format_utc(row.leaves_at)} (RFC 5011 "
               "hold-down); Revoke: written to its K-files")
    click.echo(f"run `sigchain keys run {origin} ...` now (its CDS/CDNSKEY go), then sign")


@keys.command("import-bind")
@click.argument("directory", metavar="DIR")
@click.option("--policy", "source", required=True, metavar="FILE|NAME",
              help="The zone's dnssec-policy as a sigchain policy (its TTLs derive the states).")
@AT_OPTION
@JSON_OPTION
@handle_errors
@json_keys("zones")
def import_bind(directory: str, source: str, at: str | None, as_json: bool) -> None:
    """Take over a key directory BIND's dnssec-policy manages (.key/.private/.state), with
    every key's current states, so the roll continues where BIND was."""
    from sigchain.cli.policy import load
    from sigchain.services import bindimport

    found = bindimport.import_bind(directory, load(source), _now(at))
    if as_json:
        emit_json({"zones": {zone: [keymanager.key_json(sk) for sk in keys]
                             for zone, keys in found.items()}, "error": None})
        return
    for zone, stored in found.items():
        click.echo(f"zone {zone}: imported {len(stored)} key(s) from BIND: "
                   + ", ".join(f"{sk.tag} ({sk.key.role})" for sk in stored))
        click.echo(f"  see them with: sigchain keys status {zone} --keys {directory}")


CHECKDS_KEYS = ("zone", "parent", "now", "servers", "keys", "recorded", "reset", "agree",
                "warnings")


@keys.command()
@click.argument("zone")
@KEYS_OPTION
@click.option("--parent-server", "parent_servers", multiple=True, metavar="ADDR[#PORT]",
              help="A server of the parent zone to ask (repeatable; as BIND's parental-agents)."
                   " Default: every server the parent's referral names, found from root hints.")
@click.option("--anchor", "anchor_file", default=None, metavar="FILE",
              help="Trust anchor(s) to validate the DS from (DS/DNSKEY records or BIND "
                   "trust-anchors); with --parent-server, one for the parent zone or above it "
                   "that those servers serve. Default: the IANA root anchors.")
@click.option("--root-hints", "hints_file", default=None, metavar="FILE",
              help="Root hints for finding the parent's servers (default: the IANA roots).")
@AT_OPTION
@JSON_OPTION
@handle_errors
@json_keys(*CHECKDS_KEYS)
def checkds(zone: str, keydir: str, parent_servers: tuple[str, ...], anchor_file: str | None,
            hints_file: str | None, at: str | None, as_json: bool) -> None:
    """Ask every parent server over TCP for ZONE's DS, validate each answer, and record in the
    key state the keys whose DS is at every server (or gone from all). Exit 1 when servers
    disagree or fail (the roll keeps waiting; never an outage)."""
    from sigchain.cli.parentview import checkds_json, checkds_lines
    from sigchain.core.parent.agreement import disagreements
    from sigchain.core.validate import anchors as anchors_mod
    from sigchain.services import parentcheck, trace

    origin, now = _zone(zone), _now(at)
    servers = [anchors_mod.parse_server(s, what="parent server") for s in parent_servers]
    anchors = trace.read_anchors(anchor_file) if anchor_file else \
        anchors_mod.iana_root_anchors()
    hints = trace.read_root_hints(hints_file) if hints_file else \
        anchors_mod.root_hint_servers()
    result = parentcheck.check(origin, keydir, now, anchors, servers=servers,
                               hints=() if servers else hints)
    warnings = disagreements(result.agreement) + [
        f"zone {origin}: parent server {s.server}: {s.error}" for s in result.agreement.failed]
    if as_json:
        emit_json({**checkds_json(result, now), "warnings": warnings, "error": None})
    else:
        for line in checkds_lines(result):
            click.echo(line)
        for line in warnings:
            warn(line)
    if not result.agreement.agree or warnings:
        raise SystemExit(1)


@keys.command("submit-ds")
@click.argument("zone")
@KEYS_OPTION
@click.option("--update", "update", default=None, metavar="ADDR[#PORT]",
              help="Send an RFC 2136 UPDATE replacing ZONE's DS RRset to the parent's primary.")
@click.option("--tsig", "tsig_file", default=None, metavar="FILE",
              help="With --update: sign it with the TSIG key in FILE (as tsig-keygen writes).")
@click.option("--hook", "hook", default=None, metavar="CMD",
              help="Run CMD (by /bin/sh) with the DS set as JSON on stdin (its DS lines also in "
                   "$DS_TEXT), $ZONE and $ACTION set; its exit status decides.")
@click.option("--force", is_flag=True, help="Submit even an empty DS set (the zone goes "
                                            "insecure).")
@AT_OPTION
@JSON_OPTION
@handle_errors
@json_keys("zone", "via", "ttl", "ds")
def submit_ds(zone: str, keydir: str, update: str | None, tsig_file: str | None,
              hook: str | None, force: bool, at: str | None, as_json: bool) -> None:
    """Push the DS set the key state wants now (the keys in their CDS window) to the parent.
    Nothing is recorded as seen: `keys checkds` (or `keys ds-seen`) confirms it."""
    from sigchain.core.validate import anchors as anchors_mod
    from sigchain.services import dssubmit

    if (update is None) == (hook is None):
        raise InputError("give exactly one of --update ADDR[#PORT] or --hook CMD")
    if tsig_file is not None and update is None:
        raise InputError("--tsig applies to --update only")
    origin, now = _zone(zone), _now(at)
    server = None if update is None else anchors_mod.parse_server(update, what="--update")
    key = None if tsig_file is None else dssubmit.load_tsig(tsig_file)
    done = dssubmit.submit(origin, keydir, now, update=server, tsig=key, hook=hook,
                           force=force)
    if as_json:
        emit_json({"zone": origin.to_text(), "via": done.how, "ttl": done.ttl,
                   "ds": list(done.lines), "error": None})
        return
    click.echo(f"zone {origin}: DS set of {len(done.wanted)} key(s) submitted by {done.how}:")
    for line in done.lines:
        click.echo(f"  {line}")
    click.echo(f"  confirm with: sigchain keys checkds {origin} --keys {keydir} ...")
