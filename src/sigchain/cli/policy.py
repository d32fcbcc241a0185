"""`sigchain policy`: read a key and signing policy (TOML file or built-in name), list every
problem with it and show the rollover timings it implies."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from sigchain.cli.common import JSON_OPTION, emit_json, handle_errors, json_keys
from sigchain.core.rollover import policy as pol
from sigchain.core.rollover import timings
from sigchain.core.rollover.durations import render
from sigchain.errors import InputError, OperationalError

CHECK_KEYS = ("policy", "timings", "problems", "safe")


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
