"""`sigchain serve`: the authoritative server in the foreground (UDP and TCP, SIGHUP reload,
zone transfers out and NOTIFY with `--config`)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import click

from sigchain.cli.common import handle_errors
from sigchain.core.serve.limits import DEFAULT_UDP_SIZE, MAX_UDP_SIZE, MIN_UDP_SIZE
from sigchain.edge.server import DEFAULT_IDLE_TIMEOUT, parse_listen
from sigchain.errors import InputError
from sigchain.services.authoritative import AuthoritativeService, parse_zone_spec
from sigchain.services.serveconfig import DEFAULT_LISTEN, MAX_UDP_WORKERS, from_flags, load_config


@click.command()
@click.option("--config", "config_path", metavar="FILE", default=None,
              help="TOML config: zones, addresses, TSIG keys, transfer ACLs, NOTIFY targets.")
@click.option("--zone", "zones", multiple=True, metavar="NAME=SIGNEDFILE",
              help="A zone to serve (repeatable; without --config).")
@click.option("--listen", "listens", multiple=True, metavar="ADDR[#PORT]",
              help="Address to listen on, UDP and TCP (repeatable; without --config; "
                   f"default {DEFAULT_LISTEN}).")
@click.option("--udp-size", type=int, default=None,
              help=f"EDNS UDP size advertised, and the largest UDP answer sent [default: {DEFAULT_UDP_SIZE}].")
@click.option("--tcp-idle-timeout", type=float, default=None,
              help=f"Seconds an idle TCP connection is kept open [default: {DEFAULT_IDLE_TIMEOUT:g}].")
@click.option("--udp-workers", type=int, default=None,
              help="Processes answering UDP [default: one per CPU].")
@click.option("--force", is_flag=True,
              help="Serve a zone even though its signatures are expired or not yet valid (to "
                   "restore service from the last known zone), with a loud warning; other "
                   "verification errors are still refused. Default: refuse (exit 4).")
@click.option("-v", "--verbose", count=True, help="More logging (-v: debug).")
@handle_errors
def serve(config_path: str | None, zones: tuple[str, ...], listens: tuple[str, ...],
          udp_size: int | None, tcp_idle_timeout: float | None, udp_workers: int | None,
          force: bool, verbose: int) -> None:
    """Serve signed zones authoritatively until SIGTERM/SIGINT; SIGHUP reloads zone files.

    A zone that fails to parse or to verify is refused at start (exit 2 / 4); on reload it
    is skipped with an error logged, and its previous version stays served. Zone transfers
    (AXFR/IXFR over TCP) are refused unless the --config file allows them; a reload with a
    new serial NOTIFYs the zone's also-notify targets.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s sigchain serve: %(levelname)s: %(message)s",
    )
    if udp_size is not None and not MIN_UDP_SIZE <= udp_size <= MAX_UDP_SIZE:
        raise InputError(f"--udp-size {udp_size} out of range {MIN_UDP_SIZE}..{MAX_UDP_SIZE}")
    if tcp_idle_timeout is not None and tcp_idle_timeout <= 0:
        raise InputError("--tcp-idle-timeout must be positive")
    if udp_workers is not None and not 1 <= udp_workers <= MAX_UDP_WORKERS:
        raise InputError(f"--udp-workers {udp_workers} out of range 1..{MAX_UDP_WORKERS}")
    if config_path is not None:
        if zones or listens:
            raise InputError("--config cannot be combined with --zone/--listen: "
                             "list the zones and addresses in the config file")
        config = load_config(config_path)
        if udp_size is not None:
            config = dataclasses.replace(config, udp_size=udp_size)
        if tcp_idle_timeout is not None:
            config = dataclasses.replace(config, tcp_idle_timeout=tcp_idle_timeout)
    else:
        specs = [parse_zone_spec(z) for z in zones]
        addresses = [parse_listen(a) for a in (listens or (DEFAULT_LISTEN,))]
        config = from_flags(
            specs, addresses,
            udp_size=DEFAULT_UDP_SIZE if udp_size is None else udp_size,
            tcp_idle_timeout=DEFAULT_IDLE_TIMEOUT if tcp_idle_timeout is None else tcp_idle_timeout,
        )
    if udp_workers is not None:
        config = dataclasses.replace(config, udp_workers=udp_workers)
    service = AuthoritativeService(config, force=force)
    service.load_all()
    asyncio.run(service.run())
