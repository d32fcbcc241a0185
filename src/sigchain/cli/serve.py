"""`sigchain serve`: the authoritative server in the foreground (UDP and TCP, SIGHUP reload)."""

from __future__ import annotations

import asyncio
import logging

import click

from sigchain.cli.common import handle_errors
from sigchain.core.answer import DEFAULT_UDP_SIZE, MIN_UDP_SIZE
from sigchain.edge.server import DEFAULT_IDLE_TIMEOUT, parse_listen
from sigchain.errors import InputError
from sigchain.services.authoritative import AuthoritativeService, parse_zone_spec


@click.command()
@click.option("--zone", "zones", multiple=True, metavar="NAME=SIGNEDFILE",
              help="A zone to serve (repeatable).")
@click.option("--listen", "listens", multiple=True, metavar="ADDR[#PORT]",
              help="Address to listen on, UDP and TCP (repeatable; default 127.0.0.1#53).")
@click.option("--udp-size", type=int, default=DEFAULT_UDP_SIZE, show_default=True,
              help="EDNS UDP size advertised, and the largest UDP answer sent.")
@click.option("--tcp-idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT, show_default=True,
              help="Seconds an idle TCP connection is kept open.")
@click.option("-v", "--verbose", count=True, help="More logging (-v: debug).")
@handle_errors
def serve(zones: tuple[str, ...], listens: tuple[str, ...], udp_size: int,
          tcp_idle_timeout: float, verbose: int) -> None:
    """Serve signed zones authoritatively until SIGTERM/SIGINT; SIGHUP reloads zone files.

    A zone that fails to parse or to verify is refused at start (exit 2 / 4); on reload it
    is skipped with an error logged, and its previous version stays served.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s sigchain serve: %(levelname)s: %(message)s",
    )
    if not MIN_UDP_SIZE <= udp_size <= 65535:
        raise InputError(f"--udp-size {udp_size} out of range {MIN_UDP_SIZE}..65535")
    if tcp_idle_timeout <= 0:
        raise InputError("--tcp-idle-timeout must be positive")
    specs = [parse_zone_spec(z) for z in zones]
    addresses = [parse_listen(a) for a in (listens or ("127.0.0.1#53",))]
    service = AuthoritativeService(specs, addresses, udp_size=udp_size, idle_timeout=tcp_idle_timeout)
    service.load_all()
    asyncio.run(service.run())
