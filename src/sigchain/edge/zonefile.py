"""Zone files in and out: parse with file/line errors, write atomically (temp, fsync, rename)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tokenizer
import dns.zone
import dns.zonefile

from sigchain.core.zone import records, wire
from sigchain.core.zone.records import RRsetRec
from sigchain.core.zone.wire import WireRRset
from sigchain.errors import InputError, OperationalError

_ORIGIN_RE = re.compile(r"^\$ORIGIN\s+(\S+)", re.IGNORECASE | re.MULTILINE)
_ABS_SOA_RE = re.compile(
    r"^(\S+\.)\s+(?:\d+\s+)?(?:IN\s+)?(?:\d+\s+)?SOA\b", re.IGNORECASE | re.MULTILINE
)


@dataclass
class LoadedZone:
    origin: dns.name.Name
    nodes: dict[dns.name.Name, list[dns.rdataset.Rdataset]]
    path: str
    warnings: list[str] = field(default_factory=list)

    @property
    def record_count(self) -> int:
        return sum(len(r) for rs in self.nodes.values() for r in rs)


class _RecordError(Exception):
    def __init__(self, filename: str, line: int, message: str):
        self.filename, self.line, self.message = filename, line, message


class _Reader(dns.zonefile.Reader):
    """dnspython's master-file reader, reporting the line where the bad record starts (the
    tokenizer has often moved past its end) and remembering out-of-zone records it skips."""

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.ignored: list[tuple[int, str]] = []

    def _rr_line(self) -> None:
        filename, line = self.tok.where()
        try:
            super()._rr_line()
        except dns.exception.SyntaxError as exc:
            detail = str(exc)
            if detail == dns.exception.SyntaxError.__doc__ or not detail:
                detail = "malformed record"
            raise _RecordError(str(filename), line, detail) from None
        name = self.last_name
        if name is not None and self.zone_origin is not None and not name.is_subdomain(self.zone_origin):
            self.ignored.append((line, name.to_text()))


def read_text(path: str, encoding: str = "utf-8", what: str = "zone file") -> str:
    """A whole text file; a missing, unreadable or binary file is an InputError naming it."""
    try:
        with open(path, encoding=encoding) as f:
            return f.read()
    except FileNotFoundError:
        raise InputError("no such file", file=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text {what} ({exc.reason})", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=path) from None


def choose_origin(path: str, text: str, origin: str | None) -> dns.name.Name:
    """`--origin`, else the file's first `$ORIGIN`, else the absolute owner of its SOA record
    (as in signed zones BIND and ldns write), else the file name (as dnssec-signzone)."""
    if origin is None:
        m = _ORIGIN_RE.search(text) or _ABS_SOA_RE.search(text)
        origin = m.group(1) if m else os.path.basename(path)
    try:
        return dns.name.from_text(origin)
    except dns.exception.DNSException as exc:
        raise InputError(f"bad origin {origin!r}: {exc}", file=path) from None


def load_zone(path: str, origin: str | None = None, *, require_ns: bool = True) -> LoadedZone:
    """Parse a master file into rdatasets per owner name; errors name the file and line."""
    text = read_text(path)
    zorigin = choose_origin(path, text, origin)
    # dns.zone.Zone as the transaction target: a dict of nodes (dnspython's RRsets reader
    # manager searches a list per record, which is quadratic in the zone size).
    manager = dns.zone.Zone(zorigin, dns.rdataclass.IN, relativize=False)
    try:
        with manager.writer(True) as txn:
            reader = _Reader(dns.tokenizer.Tokenizer(text, path), dns.rdataclass.IN, txn, allow_include=True)
            reader.read()
    except _RecordError as exc:
        message = exc.message
        if exc.filename == path and 0 < exc.line <= text.count("\n") + 1:
            message += f": {text.splitlines()[exc.line - 1].strip()!r}"
        raise InputError(message, file=exc.filename, line=exc.line) from None
    except dns.exception.SyntaxError as exc:
        msg = str(exc)
        m = re.match(r"^(.*?):(\d+): (.*)$", msg, re.DOTALL)
        if m:
            raise InputError(m.group(3), file=m.group(1), line=int(m.group(2))) from None
        raise InputError(msg, file=path) from None
    except dns.exception.DNSException as exc:
        raise InputError(str(exc) or type(exc).__name__, file=path) from None
    zone = LoadedZone(zorigin, {}, path)
    ignored = reader.ignored
    for name, node in manager.nodes.items():
        if node.rdatasets:
            zone.nodes[name] = list(node.rdatasets)
    if ignored:
        zone.warnings.append(
            f"{path}: ignoring out-of-zone data: "
            + ", ".join(f"line {line} {name}" for line, name in ignored[:5])
            + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else "")
        )
    apex_types = {r.rdtype for r in zone.nodes.get(zorigin, [])}
    if dns.rdatatype.SOA not in apex_types:
        raise InputError(f"no SOA record at the zone apex {zorigin}", file=path)
    if require_ns and dns.rdatatype.NS not in apex_types:
        raise InputError(f"no NS records at the zone apex {zorigin}", file=path)
    return zone


def load_records(path: str, origin: str | None = None) -> tuple[dns.name.Name, list[RRsetRec], list[str]]:
    """Parse a zone for signing into the compact record model (fast reader; the dnspython
    reader for files with $INCLUDE or $GENERATE). Returns (origin, rrsets, warnings)."""
    from sigchain.edge import fastparse

    text = read_text(path)
    zorigin = choose_origin(path, text, origin)
    try:
        rrsets, warnings = fastparse.parse(text, path, zorigin)
    except fastparse.NeedsFullReader:
        zone = load_zone(path, origin)
        return zone.origin, records.from_rdatasets(zone.nodes), zone.warnings
    return zorigin, rrsets, warnings


@dataclass
class WireZone:
    """A zone as canonical wire RRsets (core/zone/wire), the verifier's input."""

    origin: dns.name.Name
    rrsets: list[WireRRset]
    path: str
    warnings: list[str] = field(default_factory=list)


def load_wire(path: str, origin: str | None = None, *, require_ns: bool = True) -> WireZone:
    """Parse a (signed) zone for verification: the fast reader, or `load_zone` for files with
    $INCLUDE or $GENERATE. Same records, warnings and file:line errors as `load_zone`."""
    from sigchain.edge import fastparse, signedparse

    text = read_text(path)
    zorigin = choose_origin(path, text, origin)
    try:
        rrsets, warnings = signedparse.parse(text, path, zorigin, require_ns)
    except fastparse.NeedsFullReader:
        zone = load_zone(path, origin, require_ns=require_ns)
        return WireZone(zone.origin, wire.from_nodes(zone.nodes), path, zone.warnings)
    return WireZone(zorigin, rrsets, path, warnings)


def write_atomic(
    path: str,
    chunks: Iterable[str],
    mode: int = 0o644,
    before_rename: Callable[[str], None] | None = None,
) -> None:
    """Write to a temp file in the same folder, fsync, rename: the old file survives a failure.
    `before_rename(tmp)` may check the written file and raise to abandon it."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".sigchain-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if before_rename is not None:
            before_rename(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OperationalError(f"cannot write: {exc.strerror}", file=path) from None
        raise
