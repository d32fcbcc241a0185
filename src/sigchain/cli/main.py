"""`sigchain` command line: one module per command group, registered here."""

from __future__ import annotations

import click

from sigchain import __version__
from sigchain.cli import ds as ds_cmd
from sigchain.cli import keygen as keygen_cmd
from sigchain.cli import lab as lab_cmd
from sigchain.cli import serve as serve_cmd
from sigchain.cli import sign as sign_cmd
from sigchain.cli import trace as trace_cmd
from sigchain.cli import verify as verify_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sigchain")
def cli() -> None:
    """sigchain — DNSSEC keys, signing, verification, DS, serving, tracing and the lab."""


cli.add_command(keygen_cmd.keygen)
cli.add_command(sign_cmd.sign)
cli.add_command(verify_cmd.verify)
cli.add_command(ds_cmd.ds)
cli.add_command(serve_cmd.serve)
cli.add_command(lab_cmd.lab)
cli.add_command(trace_cmd.trace)


def main() -> None:
    cli(prog_name="sigchain")
