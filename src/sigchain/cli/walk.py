"""`sigchain walk`: enumerate a zone through its NSEC records, or collect its NSEC3 chain and
recover names from a wordlist — the audit of what a zone's denial records give away."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import dns.exception
import dns.name

from sigchain.cli.common import emit_json, handle_errors, json_keys, warn
from sigchain.core.validate.anchors import parse_server
from sigchain.core.walk.nsec3 import read_words
from sigchain.edge.transport import SERVER_TIMEOUT
from sigchain.errors import InputError
from sigchain.services.walk import WalkResult
from sigchain.services.walk import walk as walk_zone

WALK_KEYS = ("zone", "server", "denial", "queries", "complete", "problem", "white_lies", "names",
             "nsec3")


@click.command()
@click.argument("zone")
@click.option("--server", required=True, metavar="ADDR[#PORT]",
              help="An authoritative server of the zone.")
@click.option("--wordlist", metavar="FILE",
              help="Candidate labels, one a line (NSEC3: names recovered by hashing them).")
@click.option("--max-queries", type=click.IntRange(1), default=10000, show_default=True,
              help="Stop after this many queries.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True),
              default=SERVER_TIMEOUT, show_default=True,
              metavar="SECONDS", help="Wait per query.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
@json_keys(*WALK_KEYS)
def walk(zone: str, server: str, wordlist: str | None, max_queries: int, timeout: float,
         as_json: bool) -> None:
    """Enumerate ZONE at --server through its denial records.

    NSEC: every name, by following the chain. NSEC3: the hashed chain, collected with queries
    for made-up names until it is closed; then names are recovered offline by hashing the
    wordlist's labels under the zone ("N of M hashes recovered"). Exit 0 when the chain was
    walked to its end, 1 when it could not be (white lies, a limit, no denial records), 3
    when the server does not answer.
    """
    try:
        origin = dns.name.from_text(zone)
    except dns.exception.DNSException as exc:
        raise InputError(f"bad zone name {zone!r}: {exc}") from None
    words = None
    if wordlist is not None:
        try:
            words = read_words(Path(wordlist).read_text(errors="replace").splitlines())
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", file=wordlist) from None
    result = walk_zone(origin, parse_server(server), words, timeout=timeout,
                       max_queries=max_queries)
    if words is not None and result.denial == "nsec":
        warn("--wordlist is for NSEC3 zones: an NSEC chain names every name itself")
    if as_json:
        emit_json(to_json(result))
    else:
        render(result, words is not None)
    sys.exit(0 if result.complete else 1)


def render(r: WalkResult, had_words: bool) -> None:
    out = click.echo
    if r.denial == "nsec":
        state = "complete" if r.complete else "incomplete"
        out(f"; {r.zone} at {r.server}: NSEC chain {state}, {len(r.names)} names, "
            f"{r.queries} queries")
        for name, types in r.names.items():
            out(f"{name}\t{' '.join(types)}")
    else:
        chain = r.chain
        assert chain is not None
        p = chain.params
        salt = (p.salt.hex().upper() or "-") if p else "?"
        out(f"; {r.zone} at {r.server}: NSEC3 (iterations {p.iterations if p else '?'}, "
            f"salt {salt}), chain of {len(chain.records)} hashes "
            f"{'closed' if chain.closed else 'not closed'} after {r.queries} queries")
        for h, name in sorted(r.recovered.items(), key=lambda kv: kv[1]):
            out(f"{name}\t{' '.join(chain.records[h][1])}")
        for h in sorted(set(chain.records) - set(r.recovered)):
            out(f"; not recovered: {chain.owner_name(h)}\t{' '.join(chain.records[h][1])}")
        out(f"; {len(r.recovered)} of {len(chain.records)} hashes recovered"
            + ("" if had_words else " (no --wordlist given)"))
    if r.problem:
        out(f"; walk stopped: {r.problem}", err=True)


def to_json(r: WalkResult) -> dict[str, object]:
    data: dict[str, object] = {
        "zone": r.zone.to_text(), "server": str(r.server), "denial": r.denial,
        "queries": r.queries, "complete": r.complete, "problem": r.problem or None,
        "white_lies": r.white_lies, "error": None, "nsec3": None,
        "names": [{"name": n.to_text(), "types": t} for n, t in r.names.items()],
    }
    if r.chain is not None:
        chain, p = r.chain, r.chain.params
        data["names"] = [{"name": n.to_text(), "types": chain.records[h][1], "hash": h.hex()}
                         for h, n in sorted(r.recovered.items(), key=lambda kv: kv[1])]
        data["nsec3"] = {
            "iterations": p.iterations if p else None, "salt": p.salt.hex() if p else None,
            "hashes": len(chain.records), "recovered": len(r.recovered), "closed": chain.closed,
            "unrecovered": sorted(chain.owner_name(h) for h in set(chain.records) - set(r.recovered)),
        }
    return data
