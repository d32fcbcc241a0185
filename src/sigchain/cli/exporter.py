"""`sigchain exporter`: a Prometheus exporter for signed zones, their parents' DS and
validating resolvers (probes on a schedule; a scrape reads the last results)."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import click

from sigchain.cli.common import handle_errors
from sigchain.errors import InputError
from sigchain.services.exporter import Exporter
from sigchain.services.exporterconfig import DEFAULT_TIMEOUT, from_flags, load_config


@click.command()
@click.option("--config", "config_path", metavar="FILE",
              help="TOML file: listen, interval, timeout, parent-servers, resolvers, and a "
                   '[zones."NAME"] table per zone (servers, find-servers, axfr, ...).')
@click.option("--listen", metavar="ADDR#PORT", help="Where to serve /metrics (HTTP).")
@click.option("--zone", "zones", multiple=True, metavar="ZONE[=SERVER,...]",
              help="A zone and its authoritative servers (repeatable). Without servers, they "
                   "are found from the delegation at --parent-server.")
@click.option("--find-servers", is_flag=True,
              help="Also probe every address of the zone's NS names (asked of its first "
                   "listed server), so no server is missed.")
@click.option("--axfr", is_flag=True,
              help="Transfer the whole zone (AXFR) from each server and watch every RRSIG, "
                   "not only those of the apex SOA, DNSKEY and NS.")
@click.option("--parent-server", "parents", multiple=True, metavar="ADDR[#PORT]",
              help="A server of the parent zone whose DS is compared with the DNSKEYs.")
@click.option("--resolver", "resolvers", multiple=True, metavar="ADDR[#PORT]",
              help="A validating resolver: is the zone's SOA answered with AD?")
@click.option("--anchor", metavar="FILE",
              help="Trust anchors (DS/DNSKEY records or BIND trust-anchors): sigchain also "
                   "validates each zone itself through each --resolver, with CD=1.")
@click.option("--interval", default="60s", show_default=True, metavar="DURATION",
              help="Time between probe rounds of a zone.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True),
              default=DEFAULT_TIMEOUT, show_default=True,
              metavar="SECONDS", help="Wait per query.")
@click.option("--keys", "key_dirs", multiple=True, metavar="ZONE=DIR",
              help="The zone's `sigchain keys` directory: key-state metrics from its state.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@handle_errors
def exporter(config_path: str | None, listen: str | None, zones: tuple[str, ...],
             find_servers: bool, axfr: bool, parents: tuple[str, ...],
             resolvers: tuple[str, ...], anchor: str | None, interval: str, timeout: float,
             key_dirs: tuple[str, ...], verbose: bool) -> None:
    """Probe zones on a schedule and serve the results as Prometheus metrics until
    SIGTERM/SIGINT (exit 0). Metrics per authoritative server: RRSIG expiry and inception
    per RRset and the earliest, SOA serial, probe success and duration; per parent server:
    DS count and whether a DS matches a signing DNSKEY; per resolver: AD seen."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s sigchain exporter: %(levelname)s: %(message)s")
    if config_path is not None:
        if listen or zones or parents or resolvers or find_servers or axfr or anchor or key_dirs:
            raise InputError("--config cannot be combined with --listen/--zone/--parent-server/"
                             "--resolver/--anchor/--find-servers/--axfr: put them in the file")
        config = load_config(config_path)
    else:
        if listen is None:
            raise InputError("--listen ADDR#PORT is required (or --config FILE)")
        config = from_flags(listen, zones, parents, resolvers, interval, find_servers, axfr,
                            timeout, anchor, key_dirs)
    service = Exporter(config)

    def stop(signum: int, frame: FrameType | None) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run()
