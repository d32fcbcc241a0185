"""`sigchain lab up|status|down`: a signed root → TLD → zone hierarchy on loopback, with
a validating resolver that trusts only the lab root."""

from __future__ import annotations

from typing import Any

import click

from sigchain.cli.common import JSON_OPTION, emit_json, handle_errors, json_keys
from sigchain.core.dnssec.timefmt import format_utc
from sigchain.core.lab import hierarchy
from sigchain.services.lab import RESOLVER_CHOICES, Lab

DIR_OPTION = click.option("--dir", "directory", default="lab", show_default=True,
                          help="Lab directory: keys, zones, configs, PID and log files, state.")
# The keys of each command's --json (null on failure, beside "error").
UP_KEYS = ("dir", "resolver", "zones", "servers", "resolvers", "added_addresses", "anchor",
           "anchor_changed", "resign_by", "resolver_address", "dry_run", "actions", "wake_at")
STATUS_KEYS = ("dir", "resolver", "resolver_address", "anchor", "zones", "processes", "running",
               "added_addresses")
DOWN_KEYS = ("stopped", "not_running", "removed_addresses")


@click.group()
def lab() -> None:
    """The local lab: signed hierarchy on 127.53.0.x, port 53, and a validating resolver."""


@lab.command()
@DIR_OPTION
@click.option("--resolver", type=click.Choice(RESOLVER_CHOICES), default=None,
              help="Validating resolver to run: unbound on 127.53.1.1 (the first time's default), "
                   "named on 127.53.1.2, or none. Default: the lab's current one.")
@click.option("--fresh", is_flag=True, help="New keys (and so a new trust anchor) for every zone.")
@click.option("--dry-run", is_flag=True, help="Print what up would do, each step with its reason; "
                                               "change nothing.")
@JSON_OPTION
@handle_errors
@json_keys(*UP_KEYS)
def up(directory: str, resolver: str | None, fresh: bool, dry_run: bool, as_json: bool) -> None:
    """Build, sign and serve the lab (as root); again: reuse keys, re-sign what is due."""
    if dry_run:
        _render_plan(Lab(directory), resolver, fresh, as_json)
        return
    report = Lab(directory).up(resolver, fresh)
    if as_json:
        emit_json({**dict.fromkeys(UP_KEYS), **report.to_json(), "dry_run": False, "error": None})
        return
    d = report.directory
    click.echo(f"lab in {d}")
    for z in report.zones:
        zone = hierarchy.zone(z["zone"])
        click.echo(f"  {z['zone']:<24} {zone.address:<12} {z['action']:<34} {zone.about}")
    started = sum(1 for s in report.servers if s["action"] == "started")
    click.echo(f"servers: {len(report.servers)} on {hierarchy.ZONES[0].address}-"
               f"{hierarchy.ZONES[-1].address} port {hierarchy.PORT} ({started} started)")
    if report.added_addresses:
        click.echo(f"added to lo: {', '.join(report.added_addresses)}")
    click.echo(f"trust anchor ({'new' if report.anchor_changed else 'unchanged'}): {d}/anchor.ds")
    for line in report.anchor:
        click.echo(f"  {line}")
    for r in report.resolvers:
        where = f" on {r['address']}" if "address" in r else ""
        click.echo(f"resolver: {r['name']}{where}: {r['action']}")
    addr = hierarchy.RESOLVERS.get(report.resolver)
    if addr is None:
        click.echo("no resolver (--resolver none); configs to run one: "
                   f"{d}/unbound.conf, {d}/named.conf")
        click.echo(f"query the servers directly, e.g.: dig @{hierarchy.ROOT.address} +dnssec +norec . SOA")
    else:
        click.echo("\nquery it:")
        click.echo(f"  dig @{addr} +dnssec www.example.test")
        click.echo(f"  delv @{addr} -a {d}/anchor.conf +root=. www.example.test A")
        click.echo(f"  dig @{addr} www.dnssec-failed.test     # SERVFAIL: its DS matches no key "
                   "(+cd shows the data)")
    if report.resign_by is not None:
        click.echo(f"re-sign: run `sigchain lab up` again before {format_utc(report.resign_by)}")
    click.echo(f"status: sigchain lab status --dir {d}\nstop:   sigchain lab down --dir {d}")


def _render_plan(the_lab: Lab, resolver: str | None, fresh: bool, as_json: bool) -> None:
    planned = the_lab.plan(resolver, fresh)
    if as_json:
        emit_json({**dict.fromkeys(UP_KEYS), "dir": the_lab.paths.root, "dry_run": True,
                   "actions": [a.to_json() for a in planned.actions], "wake_at": planned.wake_at,
                   "error": None})
        return
    click.echo(f"lab in {the_lab.paths.root}: dry run, nothing changed; lab up would:")
    for a in planned.actions:
        click.echo(f"  {a.describe()}")
    if planned.needs_keys():
        click.echo("(zone texts and the trust anchor are made once the new keys exist)")
    elif planned.wake_at is not None:
        click.echo(f"after that, plan again before {format_utc(planned.wake_at)} (re-sign at half validity)")


@lab.command()
@DIR_OPTION
@JSON_OPTION
@handle_errors
@json_keys(*STATUS_KEYS)
def status(directory: str, as_json: bool) -> None:
    """Zones, servers, key tags, DS at the parent, earliest signature expiry, processes.
    Exit 1 when a process the lab started is no longer running."""
    st = Lab(directory).status()
    degraded = any(not p["running"] for p in st["processes"])
    if as_json:
        emit_json({**st, "error": None})
    else:
        _render_status(st)
    if degraded:
        raise SystemExit(1)


def _keys_text(keys: list[dict[str, Any]]) -> str:
    if not keys:
        return "-"
    return " ".join(f"{k['role']}:{k['key_tag']}" for k in sorted(keys, key=lambda k: k["role"]))


def _ds_text(entry: dict[str, Any]) -> str:
    ds = entry["ds_at_parent"]
    if not ds:
        return "none (insecure)" if entry["parent"] else "-"
    return " ".join(f"{d['key_tag']}{'' if d['matches_key'] else ' (matches no key!)'}" for d in ds)


def _expiry(zone: dict[str, Any]) -> str:
    epoch = zone.get("earliest_expiry_epoch")
    return "-" if epoch is None else format_utc(epoch)


def _render_status(st: dict[str, Any]) -> None:
    procs = st["processes"]
    if not procs:
        state = "down"
    elif st["running"]:
        state = "up"
    else:
        state = "degraded (some processes are not running)"
    resolver = st["resolver"] or "none"
    where = f" on {st['resolver_address']}" if st["resolver_address"] else ""
    click.echo(f"lab in {st['dir']}: {state}; resolver {resolver}{where}")
    rows = [("ZONE", "SERVER", "RUNNING", "SERIAL", "DENIAL", "KEYS", "DS AT PARENT", "EARLIEST EXPIRY")]
    for z in st["zones"]:
        running = "yes" if z["server_running"] else "no"
        if z["server_running"] and z.get("answering_serial") is None:
            running = "no answer"
        rows.append((z["zone"], z["server"], running, str(z["serial"] or "-"), z["denial"],
                     _keys_text(z["keys"]), _ds_text(z),
                     _expiry(z) + (" (re-sign due)" if z.get("resign_due") else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    click.echo("processes:")
    if not procs:
        click.echo("  none")
    for p in procs:
        click.echo(f"  {p['name']:<20} pid {p['pid']:<8} {'running' if p['running'] else 'NOT RUNNING':<12}"
                   f" log {p['log']}")
    if st["added_addresses"]:
        click.echo(f"addresses added to lo: {', '.join(st['added_addresses'])}")
    for line in st["anchor"]:
        click.echo(f"trust anchor: {line}")


@lab.command()
@DIR_OPTION
@JSON_OPTION
@handle_errors
@json_keys(*DOWN_KEYS)
def down(directory: str, as_json: bool) -> None:
    """Stop what `lab up` started (by PID) and remove the lo addresses it added; keys stay."""
    out = Lab(directory).down()
    if as_json:
        emit_json({**out, "error": None})
        return
    if not any(out.values()):
        click.echo("lab: nothing to stop")
        return
    if out["stopped"]:
        click.echo(f"stopped: {', '.join(out['stopped'])}")
    if out["not_running"]:
        click.echo(f"already gone: {', '.join(out['not_running'])}")
    if out["removed_addresses"]:
        click.echo(f"removed from lo: {', '.join(out['removed_addresses'])}")


DRILL_KEYS = ("drill", "action", "about", "zone", "changed", "restarted", "expected_cause",
              "probe", "cd_data", "resolver", "resolvers", "flushed")


def _render_drill(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json({**out, "error": None})
        return
    if out["action"] == "drill":
        click.echo(f"drill {out['drill']} on {out['zone']}: {out['about']}")
        click.echo(f"changed: {', '.join(out['changed'])}; caches flushed: "
                   f"{', '.join(out['flushed'])}")
        click.echo("what on-call sees now:")
        cd = "the data is there" if out["cd_data"] else "SERVFAIL too: the answer never arrives"
        for address in out["resolvers"].values():
            click.echo(f"  dig @{address} {out['probe']}          # SERVFAIL")
            click.echo(f"  dig @{address} +cd {out['probe']}      # {cd}")
        click.echo(f"  sigchain diagnose {out['probe']} --resolver {out['resolver']} "
                   f"--anchor DIR/anchor.ds --root-hints DIR/root.hints   # {out['expected_cause']}")
        click.echo(f"undo: sigchain lab repair {out['drill']}")
    else:
        click.echo(f"repaired {out['drill']} on {out['zone']}: restored "
                   f"{', '.join(out['changed'])}; caches flushed: {', '.join(out['flushed'])}")
        for address in out["resolvers"].values():
            click.echo(f"  dig @{address} +dnssec {out['probe']}  # validates again (ad)")


@lab.command()
@click.argument("name", metavar="DRILL")
@click.option("--zone", default=None, help="The lab zone to break (default example.test).")
@DIR_OPTION
@JSON_OPTION
@handle_errors
@json_keys(*DRILL_KEYS)
def drill(name: str, zone: str | None, directory: str, as_json: bool) -> None:
    """Break the running lab on purpose: broken-ds, expired-rrsig, stale-anchor,
    stripping-middlebox or small-edns. One drill
    at a time; `lab repair DRILL` undoes it."""
    from sigchain.services.labdrills import Drills

    _render_drill(Drills(directory).run(name, zone), as_json)


@lab.command()
@click.argument("name", metavar="DRILL")
@DIR_OPTION
@JSON_OPTION
@handle_errors
@json_keys(*DRILL_KEYS)
def repair(name: str, directory: str, as_json: bool) -> None:
    """Undo the running drill DRILL and flush the resolver: validation is back."""
    from sigchain.services.labdrills import Drills

    _render_drill(Drills(directory).repair(name), as_json)
