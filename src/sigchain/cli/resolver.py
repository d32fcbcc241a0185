"""`sigchain resolver`: a validating recursive resolver in the foreground."""

from __future__ import annotations

import logging

import click

from sigchain.cli.common import handle_errors
from sigchain.services import resolverrun
from sigchain.services.resolver import ResolverService
from sigchain.services.resolverconfig import (
    DEFAULT_ANCHOR_STATE,
    DEFAULT_LISTEN,
    ResolverConfig,
    from_flags,
    load_config,
)


@click.command()
@click.option("--config", "config_path", metavar="FILE", default=None,
              help="TOML config mirroring the flags (listen, anchor, root-hints, allow, forward, "
                   "require-secure, metrics) plus [cache]; flags given override it.")
@click.option("--listen", "listens", multiple=True, metavar="ADDR[#PORT]",
              help=f"Address to answer on, UDP and TCP (repeatable; default {DEFAULT_LISTEN}).")
@click.option("--anchor", metavar="FILE", default=None,
              help="Static trust anchors (DS/DNSKEY records or BIND trust-anchors); default: "
                   "the IANA root's, kept current by RFC 5011.")
@click.option("--managed-anchor", metavar="FILE", default=None,
              help="Trust anchors to keep current by RFC 5011 (instead of the IANA root's).")
@click.option("--anchor-state", metavar="FILE", default=None,
              help=f"RFC 5011 state of the managed anchors, created if absent [default: "
                   f"{DEFAULT_ANCHOR_STATE}].")
@click.option("--negative-anchor", "negative", multiple=True, metavar="NAME[=LIFETIME]",
              help="Answer names under NAME without validation (RFC 7646) until LIFETIME "
                   "(seconds or 30m/1h/2d; default 1h) or until the zone validates again.")
@click.option("--root-hints", metavar="FILE", default=None,
              help="Root hints (NS and address records); default: the IANA root servers.")
@click.option("--allow", "allow", multiple=True, metavar="CIDR",
              help="Client network to answer (repeatable; default loopback); others get REFUSED.")
@click.option("--forward", "forward", multiple=True, metavar="ZONE=ADDR[#PORT][,…]",
              help="Send queries for ZONE to these servers ('.' for everything), validated here.")
@click.option("--require-secure", "require_secure", multiple=True, metavar="NAME",
              help="Answers under NAME must validate as secure: insecure ones get SERVFAIL too.")
@click.option("--metrics", metavar="ADDR#PORT", default=None,
              help="Serve Prometheus metrics over HTTP there.")
@click.option("--workers", type=int, default=None,
              help="Processes answering on the same addresses (SO_REUSEPORT), each with its "
                   "own cache [default: 1].")
@click.option("-v", "--verbose", count=True, help="More logging (-v: debug).")
@handle_errors
def resolver(config_path: str | None, listens: tuple[str, ...], anchor: str | None,
             root_hints: str | None, allow: tuple[str, ...], forward: tuple[str, ...],
             require_secure: tuple[str, ...], metrics: str | None, workers: int | None,
             managed_anchor: str | None, anchor_state: str | None, negative: tuple[str, ...],
             verbose: int) -> None:
    """Resolve and validate for clients until SIGTERM/SIGINT; SIGHUP re-reads the config.

    AD only on validated data (and only when the client set DO or AD); bogus answers get
    SERVFAIL with an Extended DNS Error naming the cause; +cd shows the data anyway.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s sigchain resolver: %(levelname)s: %(message)s",
    )

    def config() -> ResolverConfig:
        base = load_config(config_path) if config_path is not None else None
        return from_flags(listens, anchor, root_hints, allow, forward, require_secure, metrics,
                          workers, base=base, managed_anchor=managed_anchor,
                          anchor_state=anchor_state, negative=negative)

    service = ResolverService(config(), reread=config)
    resolverrun.serve(service)
