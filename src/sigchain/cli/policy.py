"""`sigchain policy`: read a key and signing policy (TOML file or built-in name), list every
problem with it and the rollover timings it implies (check), and run it for years on a fake
clock against a model parent and every resolver cache state (simulate)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from sigchain.cli.common import JSON_OPTION, emit_json, handle_errors, json_keys
from sigchain.core.rollover import durations, timings
from sigchain.core.rollover import policy as pol
from sigchain.core.rollover.durations import render
from sigchain.edge.zonefile import write_atomic
from sigchain.errors import InputError, OperationalError
from sigchain.services.signing import check_output

CHECK_KEYS = ("policy", "timings", "problems", "safe")
SIMULATE_KEYS = ("policy", "start", "years", "ds_lag", "ds_gate", "parent_ds_ttl", "max_zone_ttl", "keys",
                 "actions", "combinations", "failures", "secured", "safe")


def load(source: str) -> pol.KeyPolicy:
    """A built-in policy by name, or a TOML policy file (a file of that name wins)."""
    path = Path(source)
    if source in pol.BUILTINS and not path.exists():
        return pol.builtin(source)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such file, nor a built-in policy (built in: "
                         f"{', '.join(pol.BUILTINS)})", file=source) from None
    except OSError as exc:
        raise OperationalError(exc.strerror or str(exc), file=source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError("not UTF-8 text", file=source, line=line) from None
    return pol.parse(text, source, path.stem)


@click.group()
def policy() -> None:
    """Key and signing policies (BIND dnssec-policy options, in TOML)."""


@policy.command()
@click.argument("source", metavar="FILE|NAME")
@JSON_OPTION
@handle_errors
@json_keys(*CHECK_KEYS)
def check(source: str, as_json: bool) -> None:
    """List every problem with a policy and the roll timings it implies (exit 1 when unsafe)."""
    the_policy = load(source)
    problems = timings.check(the_policy)
    rolls = {role: roll for role, roll in timings.rolls(the_policy).items()
             if any(k.role == role for k in the_policy.keys)}
    safe = not any(p.unsafe for p in problems)
    if as_json:
        emit_json({"policy": dataclasses.asdict(the_policy),
                   "timings": {role: _roll_json(roll) for role, roll in rolls.items()},
                   "problems": [dataclasses.asdict(p) for p in problems], "safe": safe})
    else:
        click.echo(_text(the_policy, rolls, problems, safe))
    sys.exit(0 if safe else 1)


@policy.command()
@click.argument("source", metavar="[FILE|NAME]", default="default")
@click.option("--years", type=click.IntRange(1, 30), default=3, show_default=True,
              help="How long to simulate.")
@click.option("--ds-lag", default="2d", show_default=True,
              help="How long the parent takes to publish or remove a DS the child asks for.")
@click.option("--no-ds-gate", "ds_gate", flag_value=False, default=True,
              help="Run the engine without the DS observation gate, as one that trusts "
                   "elapsed time: it takes a DS as in (out) at the parent the moment it asks "
                   "and waits only the policy's timings, so a --ds-lag beyond them fails.")
@click.option("--actual-parent-ds-ttl", default=None, metavar="DUR",
              help="The parent's real DS TTL (default: the policy's parent-ds-ttl).")
@click.option("--actual-max-zone-ttl", default=None, metavar="DUR",
              help="The zone's real largest TTL (default: the policy's max-zone-ttl).")
@click.option("--svg", "svg_out", default=None, metavar="OUT",
              help="Also draw each key's record states over the years as an SVG picture "
                   "(written atomically to OUT, even when the policy fails).")
@JSON_OPTION
@handle_errors
@json_keys(*SIMULATE_KEYS)
def simulate(source: str, years: int, ds_lag: str, ds_gate: bool,
             actual_parent_ds_ttl: str | None, actual_max_zone_ttl: str | None,
             svg_out: str | None, as_json: bool) -> None:
    """Run the rollover engine on a fake clock against a model parent and every resolver
    cache state; exit 1 naming the first instant some cached DS/DNSKEY/RRSIG fails."""
    from sigchain.core.rollover import simulate as sim

    the_policy = load(source)
    lag = _option_duration("--ds-lag", ds_lag)
    world = sim.world_of(the_policy, _option_duration("--actual-parent-ds-ttl",
                                                      actual_parent_ds_ttl),
                         _option_duration("--actual-max-zone-ttl", actual_max_zone_ttl))
    if svg_out is not None:
        check_output(svg_out)  # before years of simulation
    result = sim.run(the_policy, years * 365, lag, world, gated=ds_gate)
    secured = any(k.ds_published is not None for k in result.keys)
    if svg_out is not None:
        from sigchain.core.rollover import svg

        failure = result.failures[0].at if result.failures else None
        # States as the world's caches see them (its TTLs, which --actual-* may change).
        picture = svg.timeline(result.keys, world, sim.T0, sim.T0 + years * 365 * 86400,
                               failure)
        write_atomic(svg_out, [picture])
    if as_json:
        emit_json({"policy": the_policy.name, "start": sim.T0, "years": years, "ds_lag": lag,
                   "ds_gate": ds_gate,
                   "parent_ds_ttl": world.parent_ds_ttl, "max_zone_ttl": world.max_zone_ttl,
                   "keys": [dataclasses.asdict(k) for k in result.keys],
                   "actions": [dataclasses.asdict(a) for _, a in result.log],
                   "combinations": result.combinations,
                   "failures": [dataclasses.asdict(f) for f in result.failures],
                   "secured": secured, "safe": not result.failures and secured})
    else:
        click.echo(_simulation_text(the_policy, years, lag, ds_gate, world, result))
    sys.exit(1 if result.failures or not secured else 0)


def _option_duration(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return durations.parse(text)
    except InputError as exc:
        raise InputError(f"{option}: {exc.message}") from None


def _simulation_text(p: pol.KeyPolicy, years: int, lag: int, gated: bool,
                     world: pol.KeyPolicy, result: Any) -> str:
    from sigchain.core.dnssec.timefmt import format_utc

    created: dict[str, int] = {}
    for k in result.keys:
        created[k.role] = created.get(k.role, 0) + 1
    from sigchain.core.rollover.simulate import T0

    lines = [f"policy {p.name}: {years} years from {format_utc(T0)}, "
             f"DS lag {render(lag)}, parent DS TTL {render(world.parent_ds_ttl)}, max zone TTL "
             f"{render(world.max_zone_ttl)}",
             f"  {len(result.log)} actions at {len({t for t, _ in result.log})} instants; keys: "
             + ", ".join(f"{role} {n}" for role, n in sorted(created.items())),
             f"  {result.combinations} cached DS/DNSKEY/RRSIG combinations judged",
             "  DS steps gated on the DS seen at the parent" if gated else
             "  DS steps NOT gated: the engine takes a DS as in (out) at the parent the moment "
             "it asks for it"]
    if not any(k.ds_published is not None for k in result.keys):
        why = ("it has no keys" if not result.keys else
               "its keys never all reached every cache: see policy check")
        lines.append(f"policy {p.name}: FAILS: no DS was ever published, so the zone stayed "
                     f"insecure ({why})")
        return "\n".join(lines)
    if not result.failures:
        lines.append(f"policy {p.name}: every cached combination validates at every instant")
        return "\n".join(lines)
    first = result.failures[0]
    lines.append(f"policy {p.name}: FAILS at {format_utc(first.at)}: cached DS "
                 f"{list(first.ds)}, DNSKEY {list(first.dnskey)} signed by "
                 f"{list(first.dnskey_signers)}, data signed by {list(first.data_signers)}: "
                 f"{first.cause} ({len(result.failures)} failing combinations)")
    return "\n".join(lines)


def _roll_json(roll: timings.Roll) -> dict[str, Any]:
    return {"name": roll.name, "rfc": roll.rfc, "gated_on": roll.gated_on, "total": roll.total,
            "phases": [[{"name": i.name, "seconds": i.seconds,
                         "terms": [{"term": t, "seconds": s} for t, s in i.terms]}
                        for i in phase] for phase in roll.phases]}


def _text(p: pol.KeyPolicy, rolls: dict[str, timings.Roll], problems: list[timings.Problem],
          safe: bool) -> str:
    keys = ", ".join(f"{k.role} algorithm {k.algorithm} lifetime "
                     f"{'unlimited' if k.lifetime is None else render(k.lifetime)}"
                     for k in p.keys) or "none"
    denial = "nsec" if p.nsec3 is None else (
        f"nsec3 iterations {p.nsec3.iterations} salt-length {p.nsec3.salt_length} "
        f"optout {'yes' if p.nsec3.optout else 'no'}")
    lines = [f"policy {p.name}: keys {keys}; {denial}", "timings:"]
    for role, roll in rolls.items():
        lines.append(f"  {role}: {roll.name} ({roll.rfc})")
        seen: set[str] = set()
        for interval in (i for phase in roll.phases for i in phase):
            if interval.name not in seen:
                seen.add(interval.name)
                lines.append(f"    {interval.text()}")
        lines.append(f"    {roll.text()}")
        if roll.gated_on:
            lines.append(f"    plus the wait for {roll.gated_on}")
    for problem in problems:
        lines.append(f"{'unsafe' if problem.unsafe else 'warning'}: {problem.message}")
    unsafe = sum(p.unsafe for p in problems)
    lines.append(f"policy {p.name}: " + ("safe" if safe else f"unsafe ({unsafe} problem"
                                                             f"{'s' if unsafe != 1 else ''})"))
    return "\n".join(lines)
