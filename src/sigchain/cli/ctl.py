"""`sigchain ctl`: talk to a running `sigchain serve` over its control socket (as rndc):
status, reload, sign, roll, ds-seen, ds-gone."""

from __future__ import annotations

from typing import Any

import click

from sigchain.cli.common import JSON_OPTION, emit_json, handle_errors, json_keys
from sigchain.core.dnssec import timefmt
from sigchain.edge import ctlsocket

DEFAULT_SOCKET = "/run/sigchain/serve.sock"
_KEY_OPTION = click.option("--key", "tag", required=True,
                           help="The key's tag (or id in the key state).")


@click.group()
@click.option("--socket", "socket_path", metavar="PATH", default=None,
              help=f"The server's control socket [default: the --config file's control-socket, "
                   f"else {DEFAULT_SOCKET}].")
@click.option("--config", "config_path", metavar="FILE", default=None,
              help="The server's config file (its [options] control-socket is used).")
@click.pass_context
def ctl(ctx: click.Context, socket_path: str | None, config_path: str | None) -> None:
    """Control a running `sigchain serve` (its control socket: [options] control-socket).

    Exit codes: 0 done, 2 bad input (unknown zone or key), 3 no server listening or it
    failed, 4 refused as unsafe."""
    ctx.obj = {"socket": socket_path, "config": config_path}


def _socket(ctx: click.Context) -> str:
    if ctx.obj["socket"]:
        return str(ctx.obj["socket"])
    if ctx.obj["config"]:
        from sigchain.services.serveconfig import load_config

        path = load_config(ctx.obj["config"]).control_socket
        if path is None:
            from sigchain.errors import InputError

            raise InputError(f"{ctx.obj['config']}: no control-socket in [options]")
        return path
    return DEFAULT_SOCKET


def _send(ctx: click.Context, command: str, **args: Any) -> Any:
    return ctlsocket.request(_socket(ctx), {"command": command, **args})


def _when(t: int | None) -> str:
    return "never" if t is None else timefmt.format_utc(t)


def _show_signing(st: dict[str, Any]) -> None:
    click.echo(f"  policy {st['policy']}, unsigned file {st['unsigned']}, keys in "
               f"{st['key_directory']}")
    for k in st["keys"]:
        states = " ".join(f"{r}={v}" for r, v in k["states"].items())
        click.echo(f"  key {k['tag']} ({k['role']}, algorithm {k['algorithm']}): {states}; "
                   f"goal {k['goal']}")
        if k["next"] is not None:
            change = ", ".join(f"{r} → {v}" for r, v in k["next"]["states"].items())
            click.echo(f"    next: {change} at {_when(k['next']['at'])}")
    for line in st["waiting"]:
        click.echo(f"  {line}")
    if not st["waiting"]:
        click.echo("  the roll waits for nothing but time")
    click.echo(f"  next signature refresh: {_when(st['next_refresh'])}; next key event: "
               f"{_when(st['next_key_event'])}")


def _show_zone(z: dict[str, Any]) -> None:
    kind = "signed by this server (inline) from" if z["inline"] else "pre-signed file"
    click.echo(f"zone {z['zone']}: serial {z['serial']}, {kind} {z['file']}, loaded "
               f"{_when(z['loaded_at'])}")
    if z.get("signing"):
        _show_signing(z["signing"])
    parent = z.get("parent")
    if parent:
        servers = ", ".join(parent.get("servers", ()))
        verdict = "agree" if parent["agree"] else "do not agree"
        click.echo(f"  parent check at {_when(parent['at'])}: servers {servers or '-'} {verdict}")
        for line in parent["warnings"]:
            click.echo(f"  {line}")


def _show_status(result: dict[str, Any]) -> None:
    for z in result["zones"]:
        _show_zone(z)


def _show_reload(result: dict[str, Any]) -> None:
    for name, outcome in result["zones"].items():
        click.echo(f"zone {name}: {outcome}")


def _any_zone_command(name: str, about: str, show: Any) -> None:
    """A command on every zone, or the ZONE given."""

    @ctl.command(name, help=about)
    @click.argument("zone", required=False)
    @JSON_OPTION
    @click.pass_context
    @handle_errors
    @json_keys("zones")
    def command(ctx: click.Context, zone: str | None, as_json: bool) -> None:
        result = _send(ctx, name, zone=zone)
        if as_json:
            emit_json({**result, "error": None})
        else:
            show(result)


_any_zone_command("status", "Each zone (or ZONE): serial, file, when loaded; for an inline zone "
                  "its keys, their states and what a roll waits for (as `keys status`).",
                  _show_status)
_any_zone_command("reload", "Reload changed zone files now (as SIGHUP) and say what became of "
                  "ZONE (or each).", _show_reload)


@ctl.command()
@click.argument("zone")
@JSON_OPTION
@click.pass_context
@handle_errors
@json_keys("zone", "serial")
def sign(ctx: click.Context, zone: str, as_json: bool) -> None:
    """Re-sign an inline zone now (as `rndc sign`)."""
    result = _send(ctx, "sign", zone=zone)
    if as_json:
        emit_json({**result, "error": None})
        return
    click.echo(f"zone {result['zone']}: re-signed, serial {result['serial']}")


@ctl.command()
@click.argument("zone")
@_KEY_OPTION
@JSON_OPTION
@click.pass_context
@handle_errors
@json_keys("zone", "serial", "key", "tag")
def roll(ctx: click.Context, zone: str, tag: str, as_json: bool) -> None:
    """Start rolling a key now (as `rndc dnssec -rollover`); the server acts on it at once."""
    result = _send(ctx, "roll", zone=zone, key=tag)
    if as_json:
        emit_json({**result, "error": None})
        return
    click.echo(f"zone {result['zone']}: roll of key {result['tag']} started; serial "
               f"{result['serial']}")


def _observation_command(name: str, what: str, about: str) -> None:
    @ctl.command(name, help=about)
    @click.argument("zone")
    @_KEY_OPTION
    @JSON_OPTION
    @click.pass_context
    @handle_errors
    @json_keys("zone", "serial", "key", "tag", "observation", "since")
    def command(ctx: click.Context, zone: str, tag: str, as_json: bool) -> None:
        result = _send(ctx, name, zone=zone, key=tag)
        if as_json:
            emit_json({**result, "error": None})
            return
        click.echo(f"zone {result['zone']}: DS of key {result['tag']} {what} every parent "
                   f"server since {_when(result['since'])}; serial {result['serial']}")


_observation_command("ds-seen", "published at", "The key's DS is at every parent server (as "
                     "`rndc dnssec -checkds published`); the server acts on it at once.")
_observation_command("ds-gone", "withdrawn from", "The key's DS is gone from every parent "
                     "server (as `rndc dnssec -checkds withdrawn`); the server acts on it at once.")
