"""Shared CLI plumbing: error → exit-code mapping (JSON errors with --json), JSON output,
warnings, and how times are shown."""

from __future__ import annotations

import functools
import json
import os
import select
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, TypeVar

import click

from sigchain.errors import InputError, OperationalError, SigchainError, UnsafeRefused

F = TypeVar("F", bound=Callable[..., Any])

JSON_OPTION = click.option("--json", "as_json", is_flag=True,
                           help="Machine-readable output on stdout (errors too, as "
                                '{"error": {...}}); the exit code is unchanged.')

# The "code" of a JSON error: what kind of failure, one per exit code.
_ERROR_CODES: tuple[tuple[type[SigchainError], str], ...] = (
    (InputError, "bad-input"), (UnsafeRefused, "refused-unsafe"),
    (OperationalError, "operational"),
)


def json_keys(*keys: str) -> Callable[[F], F]:
    """Declare the top-level keys of a command's --json output, so a failure prints the same
    keys (null) beside "error" (put it below @handle_errors)."""

    def mark(func: F) -> F:
        func.json_keys = keys  # type: ignore[attr-defined]
        return func

    return mark


def error_json(code: str, message: str, exit_code: int, *, file: str | None = None,
               line: int | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "exit": exit_code, "file": file, "line": line}


def fail_json(keys: Iterable[str], error: dict[str, Any], **values: Any) -> None:
    """Print a failed command's JSON: its keys null unless given, and the error."""
    emit_json({**dict.fromkeys(keys), **values, "error": error})


def _error_of(exc: SigchainError) -> dict[str, Any]:
    code = next((c for cls, c in _ERROR_CODES if isinstance(exc, cls)), "error")
    return error_json(code, str(exc), exc.exit_code, file=exc.file, line=exc.line)


def handle_errors(func: F) -> F:
    """Turn SigchainError (or an unexpected OSError: exit 3) into one message on stderr and its
    exit code; with the command's --json (`as_json`), the error is JSON on stdout instead."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SigchainError as exc:
            error = _error_of(exc)
        except BrokenPipeError as exc:  # before click makes it exit 1 ('problems found')
            if stdout_gone():
                reader_gone()
            error = error_json("operational", str(exc.strerror or exc), 3)  # (a worker's pipe)
        except OSError as exc:  # a path the command did not check itself: never a traceback
            where = f"{exc.filename}: " if exc.filename else ""
            error = error_json("operational", f"{where}{exc.strerror or exc}", 3,
                               file=exc.filename)
        if kwargs.get("as_json"):
            fail_json(getattr(func, "json_keys", ()), error)
        else:
            click.echo(f"sigchain: error: {error['message']}", err=True)
        sys.exit(error["exit"])

    return wrapper  # type: ignore[return-value]


EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader went away


def stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (a BrokenPipeError can also come
    from a pipe to a worker process that died: that is an error to report)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def reader_gone() -> NoReturn:
    """stdout's reader has gone (`sigchain … | head -1`): the rest of the output dropped, no
    traceback or error line, exit 141 as a C tool killed by SIGPIPE (not 1 or 3, which would
    say what the command found)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(EXIT_PIPE)


def warn(message: str) -> None:
    click.echo(f"sigchain: warning: {message}", err=True)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))

