"""One exception hierarchy for "could not do the job"; each class maps to a CLI exit code.

Problems found *in DNS data* are not exceptions: they are `Finding`s (see findings.py).
"""

from __future__ import annotations


class SigchainError(Exception):
    """Base of every error sigchain raises on purpose."""

    exit_code = 3

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        return f"{where}{self.message}"


class InputError(SigchainError):
    """Bad input or usage: unparseable file, missing SOA, key for another zone (exit 2)."""

    exit_code = 2


class OperationalError(SigchainError):
    """The environment failed us: I/O error, network, missing peer binary (exit 3)."""

    exit_code = 3


class UnsafeRefused(SigchainError):
    """Refused because the result would be unsafe; `--force` may override (exit 4)."""

    exit_code = 4
