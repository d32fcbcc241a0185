"""Zone files in and out: parse with file/line errors, write atomically (temp, fsync, rename)."""

from __future__ import annotations

import glob
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tokenizer
import dns.zone
import dns.zonefile

from sigchain.core.zone import records, wire
from sigchain.core.zone.records import RRsetRec
from sigchain.core.zone.wire import WireRRset
from sigchain.edge.fastparse import load_warnings, mixed_ttl
from sigchain.edge.zonetext import (
    LineStream,
    check_rdata_size,
    detail,
    excerpt,
    line_at,
    open_text,
    physical_lines,
)
from sigchain.errors import InputError, OperationalError

_ORIGIN_RE = re.compile(r"^\$ORIGIN\s+(\S+)", re.IGNORECASE)
_ABS_SOA_RE = re.compile(r"^(\S+\.)\s+(?:\d+\s+)?(?:IN\s+)?(?:\d+\s+)?SOA\b", re.IGNORECASE)
MAX_INCLUDE_DEPTH = 10  # $INCLUDE nesting (a loop is refused before it gets that deep)
MAX_GENERATE = 65536  # records one $GENERATE may make (BIND sets no count; see _Reader)
MAX_GENERATED = 1 << 20  # records all the $GENERATE lines of a zone may make together
TMP_PREFIX = ".sigchain-"  # write_atomic's temp files: .sigchain-<pid>-<random>-<name>.tmp


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


class _Includes(list):  # type: ignore[type-arg]
    """dnspython's stack of files an $INCLUDE interrupted (`Reader.saved_state`): pushing one
    more is refused past MAX_INCLUDE_DEPTH, or when a file on the stack is there already
    (a loop), at the $INCLUDE line, before the file is opened again."""

    def __init__(self, reader: _Reader):
        super().__init__()
        self.reader = reader
        self.at: tuple[str, int] = ("", 0)  # the $INCLUDE being followed: file, line

    def append(self, state: object) -> None:
        tok = self.reader.tok
        # The tokenizer has read the $INCLUDE line's newline (unless the file ended).
        self.at = (str(tok.filename), tok.line_number - (0 if tok.eof else 1))
        chain = [str(s[0].filename) for s in self] + [str(tok.filename)]
        real = [os.path.realpath(f) for f in chain]
        if real[-1] in real[:-1]:  # the loop, from the first time round, by file name
            loop = [os.path.basename(f) for f in chain[real.index(real[-1]):]]
            raise _RecordError(*self.at, "$INCLUDE loop: " + " includes ".join(loop))
        if len(self) >= MAX_INCLUDE_DEPTH:
            raise _RecordError(*self.at, f"$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep")
        super().append(state)


class _Reader(dns.zonefile.Reader):
    """dnspython's master-file reader, reporting the line where the bad record starts (the
    tokenizer has often moved past its end), remembering out-of-zone records it skips, and
    bounding what a file can make it do: $INCLUDE depth and loops, $GENERATE ranges (BIND's
    rules: 0 <= start <= stop < 2**31, step >= 1; BIND sets no count, we cap it), rdata size."""

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.ignored: list[str] = []  # out-of-zone records skipped: "line N OWNER"
        self.mixed: list[str] = []  # records whose TTL differs from their RRset's (mixed_ttl)
        self.saved_state = _Includes(self)
        self.generated = 0
        self.top = str(self.tok.filename)
        self.record_at = ""  # the record being read: "line N" (in an included file "FILE line N")
        self.txn.check_put_rdataset(_check_size)
        add = self.txn.add

        def add_noting(name: dns.name.Name, ttl: int, rd: dns.rdata.Rdata) -> None:
            rrset = self.txn.get(name, rd.rdtype, rd.covers())
            if rrset is not None and rrset.ttl != ttl:
                self.mixed.append(mixed_ttl(self.record_at, name.to_text(),
                                            dns.rdatatype.to_text(rd.rdtype), ttl, rrset.ttl))
            add(name, ttl, rd)
        self.txn.add = add_noting  # type: ignore[method-assign]

    def _where(self, filename: object, line: int) -> str:
        return f"line {line}" if str(filename) == self.top else f"{filename} line {line}"

    def _rr_line(self) -> None:
        filename, line = self.tok.where()
        self.record_at = self._where(filename, line)
        try:
            super()._rr_line()
        except dns.zonefile.CNAMEAndOtherData:
            raise _RecordError(str(filename), line, f"CNAME and other data at {self.last_name}") from None
        except dns.exception.DNSException as exc:
            raise _RecordError(str(filename), line, detail(exc)) from None
        name = self.last_name
        if name is not None and self.zone_origin is not None and not name.is_subdomain(self.zone_origin):
            self.ignored.append(f"{self.record_at} {name.to_text()}")

    def _generate_line(self) -> None:
        filename, line = self.tok.where()
        self.record_at = self._where(filename, line)
        token = self.tok.get()
        m = re.fullmatch(r"(\d+)-(\d+)(?:/(\d+))?", token.value)
        start, stop, step = (int(g) for g in m.groups("1")) if m else (0, -1, 0)
        if not m or start > stop or stop >= 1 << 31 or step < 1:
            raise _RecordError(str(filename), line, f"$GENERATE: invalid range {excerpt(token.value)}")
        count = (stop - start) // step + 1
        self.generated += count
        if count > MAX_GENERATE or self.generated > MAX_GENERATED:
            raise _RecordError(
                str(filename), line,
                f"$GENERATE range {token.value} makes {count} records; at most {MAX_GENERATE} "
                f"per line and {MAX_GENERATED} per zone",
            )
        self.tok.unget(token)
        try:
            super()._generate_line()
        except dns.exception.DNSException as exc:
            raise _RecordError(str(filename), line, detail(exc)) from None


def _included(filename: str, encoding: str = "utf-8") -> LineStream:
    """An $INCLUDEd file as dnspython's reader opens it (its `open`, replaced below): read as
    the including file is (`physical_lines`: lines bounded, non-ASCII as escaped bytes), not
    as raw text. An OSError (no such file) is raised here, where dnspython expects it."""
    f = open(filename, encoding=encoding, newline="\n")

    def lines() -> Iterator[str]:
        with f:
            yield from physical_lines(f, filename)
    return LineStream(lines())


dns.zonefile.open = _included  # type: ignore[attr-defined]  # (the module's only use of open)


def _check_size(_txn: object, _name: object, rdataset: dns.rdataset.Rdataset) -> None:
    """dnspython accepts rdata no record can carry (e.g. TXT of 300 strings)."""
    if rdataset.rdtype in _LARGE:
        for rd in rdataset:
            try:
                check_rdata_size(rd.to_digestable())
            except ValueError as exc:
                raise dns.exception.SyntaxError(str(exc)) from None


# Types whose text form can hold more than 65535 bytes of data: many strings or items.
_LARGE = {dns.rdatatype.TXT, dns.rdatatype.SPF, dns.rdatatype.APL, dns.rdatatype.CAA,
          dns.rdatatype.SVCB, dns.rdatatype.HTTPS, dns.rdatatype.HINFO, dns.rdatatype.NAPTR}


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


def _origin_in_file(path: str) -> str | None:
    """The first `$ORIGIN`, or absolute owner of an SOA record, in the file (streamed: it
    usually stops at the first lines)."""
    with open_text(path) as f:
        for line in physical_lines(f, path):
            m = _ORIGIN_RE.match(line) or _ABS_SOA_RE.match(line)
            if m:
                return m.group(1)
    return None


def choose_origin(path: str, origin: str | None) -> dns.name.Name:
    """`--origin`, else the file's first `$ORIGIN` or absolute owner of its SOA record (as in
    signed zones BIND and ldns write), else the file name (as dnssec-signzone)."""
    if origin is None:
        origin = _origin_in_file(path) or os.path.basename(path)
    try:
        return dns.name.from_text(origin)
    except dns.exception.DNSException as exc:
        raise InputError(f"bad origin {excerpt(origin)}: {exc}", file=path) from None


def _quoted(filename: str, line: int, message: str) -> str:
    """`message`, with the start of the line it is about when that can be read."""
    text = line_at(filename, line) if line > 0 else ""
    return f"{message}: {excerpt(text)}" if text.strip() else message


def _read_full(path: str, zorigin: dns.name.Name, manager: dns.zone.Zone) -> _Reader:
    """dnspython's reader over the file (streamed), its failures as InputErrors."""
    with open_text(path) as f:
        tok = dns.tokenizer.Tokenizer(LineStream(physical_lines(f, path)), path)  # type: ignore[arg-type]
        reader = _Reader(tok, dns.rdataclass.IN,
                         manager.writer(True), allow_include=True)
        try:
            reader.read()
            reader.txn.commit()
        except InputError:
            raise
        except _RecordError as exc:
            raise InputError(_quoted(exc.filename, exc.line, exc.message), file=exc.filename,
                             line=exc.line) from None
        except dns.exception.SyntaxError as exc:  # from a directive: "file:line: what"
            m = re.match(r"^(.*?):(\d+): (.*)$", str(exc), re.DOTALL)
            tok = reader.tok
            if m and m.group(1) == str(tok.filename):
                # The tokenizer may have read (and put back) the line's newline already.
                line = tok.line_number - (1 if tok.ungotten_char == "\n" else 0)
                raise InputError(_quoted(m.group(1), line, detail(m.group(3))), file=m.group(1),
                                 line=line) from None
            raise InputError(detail(exc), file=path) from None
        except (dns.exception.DNSException, UnicodeDecodeError) as exc:
            filename, line = reader.tok.where()
            raise InputError(detail(exc), file=str(filename), line=line) from None
        except OSError as exc:  # an $INCLUDE file that cannot be opened
            filename, line = reader.saved_state.at
            what = f"cannot read $INCLUDE file {excerpt(str(exc.filename))}: {exc.strerror}"
            raise InputError(what, file=filename, line=line) from None
    return reader


def load_zone(path: str, origin: str | None = None, *, require_ns: bool = True) -> LoadedZone:
    """Parse a master file into rdatasets per owner name; errors name the file and line."""
    zorigin = choose_origin(path, origin)
    # dns.zone.Zone as the transaction target: a dict of nodes (dnspython's RRsets reader
    # manager searches a list per record, which is quadratic in the zone size).
    manager = dns.zone.Zone(zorigin, dns.rdataclass.IN, relativize=False)
    reader = _read_full(path, zorigin, manager)
    zone = LoadedZone(zorigin, {}, path)
    for name, node in manager.nodes.items():
        if node.rdatasets:
            zone.nodes[name] = list(node.rdatasets)
    zone.warnings += load_warnings(path, reader.ignored, reader.mixed)
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

    zorigin = choose_origin(path, origin)
    try:
        with open_text(path) as f:
            rrsets, warnings = fastparse.parse(physical_lines(f, path), path, zorigin)
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
    # Instead of `rrsets`, when the reader was asked for them so: the RRsets in the form the
    # server's index takes (core/serve/fromwire.served_form).
    served: list[tuple] | None = None  # type: ignore[type-arg]


def load_wire(path: str, origin: str | None = None, *, require_ns: bool = True,
              refuse_cname_clash: bool = True) -> WireZone:
    """Parse a (signed) zone for verification: the fast reader, or `load_zone` for files with
    $INCLUDE or $GENERATE. Same records, warnings and file:line errors as `load_zone`
    (`refuse_cname_clash` False: the fast reader keeps CNAME and other data for `verify` to
    report; dnspython's reader still refuses it)."""
    from sigchain.edge import fastparse, signedparse

    zorigin = choose_origin(path, origin)
    try:
        with open_text(path) as f:
            rrsets, warnings = signedparse.parse(physical_lines(f, path), path, zorigin, require_ns,
                                                 refuse_cname_clash)
    except fastparse.NeedsFullReader:
        zone = load_zone(path, origin, require_ns=require_ns)
        return WireZone(zone.origin, wire.from_nodes(zone.nodes), path, zone.warnings)
    return WireZone(zorigin, rrsets, path, warnings)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, someone else's
    return True


def remove_stale_temps(path: str) -> list[str]:
    """Remove temp files `write_atomic` left for `path` when its writer was killed: only ours
    (TMP_PREFIX, this target's name) and only those whose writer (the PID in the name) is gone."""
    folder, name = os.path.split(os.path.abspath(path))
    removed = []
    for tmp in glob.glob(os.path.join(glob.escape(folder), f"{TMP_PREFIX}*-*-{glob.escape(name)}.tmp")):
        pid = os.path.basename(tmp)[len(TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                os.unlink(tmp)
                removed.append(tmp)
            except OSError:
                pass
    return removed


def write_atomic(
    path: str,
    chunks: Iterable[str],
    mode: int = 0o644,
    before_rename: Callable[[str], None] | None = None,
) -> None:
    """Write to a temp file in the same folder, fsync, rename: the old file survives a failure.
    A new file gets `mode`; a replaced one keeps its permissions. The temp file is named
    TMP_PREFIX<pid>-<random>-<name>.tmp, so a later write removes one a killed writer left.
    `before_rename(tmp)` may check the written file and raise to abandon it."""
    folder, name = os.path.split(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        pass
    try:
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=f"-{name}.tmp", dir=folder)
    except OSError as exc:
        raise OperationalError(f"cannot write: {exc.strerror}", file=path) from None
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
