"""`sigchain` command line: one module per command group, imported only when its command runs
(so `--version` and `--help` start in a few tens of milliseconds)."""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys

import click

from sigchain import __version__

# name → (module, attribute, one-line help shown by `sigchain --help` without importing it)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "keygen": ("sigchain.cli.keygen", "keygen", "Generate a key pair (BIND K-files) for a zone."),
    "sign": ("sigchain.cli.sign", "sign", "Sign a zone file (dnssec-signzone)."),
    "verify": ("sigchain.cli.verify", "verify", "Verify a signed zone (dnssec-verify)."),
    "ds": ("sigchain.cli.ds", "ds", "Print DS records for keys or a zone (dnssec-dsfromkey)."),
    "serve": ("sigchain.cli.serve", "serve", "Serve zones authoritatively (UDP, TCP, XFR out)."),
    "lab": ("sigchain.cli.lab", "lab", "A signed hierarchy on loopback with a validating resolver."),
    "trace": ("sigchain.cli.trace", "trace", "Resolve and validate a name, showing the chain (delv)."),
    "resolver": ("sigchain.cli.resolver", "resolver", "A validating recursive resolver (Unbound-like)."),
    "diagnose": ("sigchain.cli.diagnose", "diagnose", "Say why a name fails to validate, and the fix."),
    "check": ("sigchain.cli.check", "check", "The five-point DNSSEC checklist for a zone."),
    "policy": ("sigchain.cli.policy", "policy", "Check or simulate a key and signing policy (dnssec-policy)."),
    "exporter": ("sigchain.cli.exporter", "exporter", "Prometheus exporter: signature expiry, DS, validation."),
    "walk": ("sigchain.cli.walk", "walk", "Enumerate a zone through its NSEC/NSEC3 records."),
    "keys": ("sigchain.cli.keys", "keys", "Run a zone's key rollovers by a policy (dnssec-keymgr)."),
    "ctl": ("sigchain.cli.ctl", "ctl", "Control a running `sigchain serve` (status, reload, sign, roll)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, about) for name, (_, _, about) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sigchain")
def cli() -> None:
    """sigchain — DNSSEC keys, signing, verification, DS, serving, tracing and the lab.

    Exit codes: 0 ok, 1 the check found problems, 2 bad input or usage, 3 operational
    failure (I/O, network), 4 refused as unsafe (--force where it can make sense)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM: stopped as Ctrl-C stops a command (its workers ended, its temp files
    removed, one line said), with the exit code of SIGTERM (143) instead of 130."""


_MAIN_PID = 0  # the process `main` runs in


def _terminated(signum: int, _frame: object) -> None:
    if os.getpid() != _MAIN_PID:  # a process forked from it (a resolver's worker before its
        signal.signal(signum, signal.SIG_DFL)  # own handlers are set): ends as it used to
        os.kill(os.getpid(), signum)
        return
    raise Terminated


def main() -> None:
    """`_main`, and when stdout's reader has gone (`sigchain … | head -1`): no traceback
    or 'Broken pipe' error, the rest of the output dropped, exit 141 as a C tool killed by
    SIGPIPE would give (not 1 or 3, which would say what the command found)."""
    try:
        try:
            _main()
        finally:
            sys.stdout.flush()  # what is still buffered fails here, not at interpreter exit
    except BrokenPipeError:
        from sigchain.cli.common import reader_gone, stdout_gone  # (not imported for --help)

        if not stdout_gone():
            raise
        reader_gone()


def _main() -> None:
    """Run the command line; a usage error with --json is a JSON error on stdout (exit 2).
    The commands that run until stopped (serve, resolver, exporter) set their own SIGTERM
    handling; for the others it is Ctrl-C's."""
    global _MAIN_PID
    args = sys.argv[1:]
    _MAIN_PID = os.getpid()
    signal.signal(signal.SIGTERM, _terminated)
    try:
        rv = cli.main(args, prog_name="sigchain", standalone_mode=False)
    except click.ClickException as exc:
        if "--json" in args:
            error = {"code": "usage", "message": exc.format_message(), "exit": exc.exit_code,
                     "file": None, "line": None}
            click.echo(json.dumps({"error": error}, indent=2, sort_keys=True))
        else:
            exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt) as exc:  # (click turns the latter into Abort)
        if isinstance(exc, Terminated) or isinstance(exc.__cause__, Terminated):
            click.echo("sigchain: terminated", err=True)
            sys.exit(143)
        click.echo("sigchain: interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)
