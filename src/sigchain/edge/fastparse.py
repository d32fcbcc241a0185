"""A fast master-file reader for signing large zones: text → RRsetRec list.

The line structure ($ORIGIN, $TTL, owner inheritance, parentheses, comments) is handled
here; rdata of the common types (A, AAAA, NS, CNAME, PTR, DNAME, MX, TXT, DS) is converted
directly, every other type through dnspython. Files with $INCLUDE or $GENERATE are left to
`zonefile.load_zone` (the caller falls back). Errors name the file and the record's line.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.ttl

from sigchain.core.zone.records import Key, RRsetRec, key_of, key_wire, make_rrset
from sigchain.core.zone.shape import clashes_with_cname
from sigchain.edge.zonetext import MAX_LINE, check_rdata_size, detail, excerpt
from sigchain.edge.zonetext import unquoted as _unquoted
from sigchain.errors import InputError


class NeedsFullReader(Exception):
    """The file uses a feature only the dnspython reader handles ($INCLUDE, $GENERATE)."""


_NAME_TYPES = {dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR, dns.rdatatype.DNAME}
_CLASSES = {"IN", "CH", "CS", "HS", "ANY", "NONE"}
_A, _AAAA, _MX, _TXT, _DS, _SOA = (
    dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.MX, dns.rdatatype.TXT, dns.rdatatype.DS,
    dns.rdatatype.SOA,
)


def is_class(tok: str) -> bool:
    """Whether `tok` is a class (a mnemonic or RFC 3597's CLASSnn); ValueError if it is one
    other than IN (1)."""
    word = tok.upper()
    numbered = word.startswith("CLASS") and word[5:].isdigit()
    if word not in _CLASSES and not numbered:
        return False
    if word != "IN" and not (numbered and int(word[5:]) == dns.rdataclass.IN):
        raise ValueError(f"class {word} is not IN")
    return True


class _Origin:
    def __init__(self, name: dns.name.Name):
        self.name = name
        self.text = name.to_text()
        self.key = key_of(name)
        self.labels = tuple(lbl.decode("ascii", "backslashreplace") for lbl in name.labels[:-1])
        # An absolute name one label below ends with this (None: the root's "." would not do).
        self.below = "." + self.text if self.text != "." else None


def _split1(s: str) -> tuple[str, str]:
    parts = s.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def _strip_comment(line: str) -> str:
    if ";" not in line:
        return line
    if '"' not in line and "\\" not in line:
        return line[: line.index(";")]
    return next((line[:i] for i, ch in _unquoted(line) if ch == ";"), line)


def _parens(line: str) -> int:
    """Net count of '(' minus ')' outside quotes (and not escaped)."""
    if '"' not in line and "\\" not in line:
        return line.count("(") - line.count(")")
    return sum(1 if ch == "(" else -1 for _, ch in _unquoted(line) if ch in "()")


def _drop_parens(line: str) -> str:
    if '"' not in line and "\\" not in line:
        return line.replace("(", " ").replace(")", " ")
    chars = list(line)
    for i, ch in _unquoted(line):
        if ch in "()":
            chars[i] = " "
    return "".join(chars)


def _name(tok: str, origin: _Origin) -> tuple[Key, str]:
    """A domain name token → (label key, absolute presentation text)."""
    if tok == "@":
        return origin.key, origin.text
    if "\\" in tok or not tok.isascii():
        n = dns.name.from_text(tok, origin.name)
        return key_of(n), n.to_text()
    if "." not in tok:  # the common case: one label below the origin
        text = f"{tok}.{origin.text}" if origin.text != "." else f"{tok}."
        if not tok or len(tok) > 63 or len(text) >= 255:
            raise ValueError(f"bad domain name {excerpt(tok)}")
        return origin.key + (tok.lower().encode(),), text
    below = origin.below
    if below is not None and tok.endswith(below):  # as common in signed zones: one label below, absolute
        head = tok[: -len(below)]
        if head and "." not in head and len(head) <= 63 and len(tok) < 255:
            return origin.key + (head.lower().encode(),), tok
    if tok.endswith("."):
        if tok == ".":
            return (), "."
        labels = tok[:-1].split(".")
        text = tok
        key = tuple(lbl.lower().encode() for lbl in reversed(labels))
    else:
        labels = tok.split(".")
        text = f"{tok}.{origin.text}" if origin.text != "." else f"{tok}."
        key = origin.key + tuple(lbl.lower().encode() for lbl in reversed(labels))
    # Without escapes, an absolute name's wire form is one byte longer than its text.
    if len(text) >= 255 or any(not lbl or len(lbl) > 63 for lbl in labels):
        raise ValueError(f"bad domain name {excerpt(tok)}")
    return key, text


def _txt(rdata: str) -> tuple[bytes, str] | None:
    if "\\" in rdata:
        return None
    chunks: list[bytes] = []
    rest = rdata.strip()
    while rest:
        if rest[0] == '"':
            end = rest.find('"', 1)
            if end < 0:
                return None
            s = rest[1:end]
            rest = rest[end + 1 :].lstrip()
        else:
            s, rest = _split1(rest)
        b = s.encode()
        if len(b) > 255:
            return None
        chunks.append(bytes((len(b),)) + b)
    if not chunks:
        return None
    return b"".join(chunks), rdata.strip()


def _rdata(rdtype: int, text: str, origin: _Origin) -> tuple[bytes, str]:
    """(canonical wire, presentation text) for one record's rdata."""
    text = text.strip()
    try:
        if rdtype == _A:
            return socket.inet_pton(socket.AF_INET, text), text
        if rdtype == _AAAA:
            return socket.inet_pton(socket.AF_INET6, text), text
        if rdtype in _NAME_TYPES:
            tok, extra = _split1(text)
            if not extra:
                key, abs_text = _name(tok, origin)
                return key_wire(key), abs_text
        elif rdtype == _MX:
            pref, tok = text.split()
            key, abs_text = _name(tok, origin)
            return struct.pack("!H", int(pref)) + key_wire(key), f"{int(pref)} {abs_text}"
        elif rdtype == _TXT:
            fast = _txt(text)
            if fast is not None:
                return fast
        elif rdtype == _DS:
            tag, alg, dtype, *digest = text.split()
            hexd = "".join(digest)
            return struct.pack("!HBB", int(tag), int(alg), int(dtype)) + bytes.fromhex(hexd), (
                f"{int(tag)} {int(alg)} {int(dtype)} {hexd.upper()}"
            )
    except (ValueError, struct.error, OSError):
        pass  # let dnspython parse it and say what is wrong
    rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin.name, relativize=False)
    return rd.to_digestable(), rd.to_text(relativize=False)


class _State:
    """What a master file's entries carry over to the next: the origin, $TTL, the last TTL
    given, the SOA minimum, and the last owner name (token and parsed)."""

    __slots__ = ("origin", "default_ttl", "last_ttl", "soa_minimum", "owner_tok", "owner")

    def __init__(self, origin: _Origin) -> None:
        self.origin = origin
        self.default_ttl: int | None = None
        self.last_ttl: int | None = None
        self.soa_minimum: int | None = None
        self.owner_tok: str | None = None
        self.owner: tuple[Key, str] | None = None

    def directive(self, line: str) -> None:
        """$ORIGIN or $TTL; $INCLUDE and $GENERATE raise NeedsFullReader."""
        directive, *args = line.split() + [""]
        word = directive.upper()
        if word in ("$INCLUDE", "$GENERATE"):
            raise NeedsFullReader(word)
        if word == "$TTL":
            self.default_ttl = dns.ttl.from_text(args[0])
        elif word == "$ORIGIN":
            self.origin = _Origin(dns.name.from_text(args[0], self.origin.name))
            self.owner_tok = None  # relative owner names change meaning
        else:
            raise ValueError(f"unknown directive {directive}")

    def owner_named(self, tok: str) -> tuple[Key, str]:
        """The owner written as `tok` (parsed once while it repeats)."""
        if tok != self.owner_tok or self.owner is None:
            self.owner = _name(tok, self.origin)
            self.owner_tok = tok
        return self.owner

    def last_owner(self) -> tuple[Key, str]:
        """The owner of a record whose line starts with blanks: the previous one."""
        if self.owner is None:
            raise ValueError("no owner name for this record")
        return self.owner

    def ttl_for(self, ttl: int | None, rdtype: int, wire: bytes) -> int:
        """A record's TTL: its own, else $TTL, else the last one given, else (for a file
        without either) the SOA's minimum field."""
        if ttl is not None:
            self.last_ttl = ttl
        elif self.default_ttl is not None:
            ttl = self.default_ttl
        else:
            ttl = self.last_ttl
        if rdtype == _SOA:
            self.soa_minimum = struct.unpack("!I", wire[-4:])[0]
        if ttl is None:
            ttl = self.soa_minimum
            if ttl is None:
                raise ValueError("no TTL: add a $TTL directive or a TTL to the record")
        return ttl


def logical_lines(lines: str | Iterable[str], path: str, first: int = 1) -> Iterator[tuple[int, str]]:
    """(line number, text) per entry: comments dropped, parenthesised lines joined. `lines` is
    the text, or its lines without their newlines (`zonetext.physical_lines`); the first of
    them is line `first` of the file."""
    held: list[str] = []
    start = depth = held_len = 0
    for lineno, raw in enumerate(lines.split("\n") if isinstance(lines, str) else lines, first):
        line = _strip_comment(raw) if ";" in raw else raw
        if held:
            held.append(line)
            held_len += len(line)
            if held_len > MAX_LINE:
                raise InputError(f"record longer than {MAX_LINE} characters (a missing ')'?)",
                                 file=path, line=start)
            depth += _parens(line)
            if depth <= 0:
                if depth < 0:
                    break
                yield start, _drop_parens(" ".join(held))
                held = []
            continue
        if not line or line.isspace():
            continue
        if "(" in line or ")" in line:
            depth = _parens(line)
            if depth > 0:
                held, start, held_len = [line], lineno, len(line)
                continue
            if depth < 0:
                start = lineno
                break
            line = _drop_parens(line)
        yield lineno, line
    if depth:
        raise InputError("unbalanced parentheses", file=path, line=start)


def bad_record(exc: Exception, path: str, lineno: int, line: str) -> InputError:
    """The error for a record that does not parse: dnspython's words (cut short: they may
    quote a huge token), the file and line, and the start of the record."""
    return InputError(f"{detail(exc)}: {excerpt(line)}", file=path, line=lineno)


def load_warnings(path: str, ignored: list[str], mixed: list[str]) -> list[str]:
    """The warnings of a read, the first five of each kind named: records outside the zone
    (skipped), and records whose TTL differs from the rest of their RRset ("line N OWNER TYPE
    TTL t, the RRset's u": RFC 2181 §5.2 deprecates it; the RRset takes its lowest, as a
    resolver treats such an RRset; BIND's reader warns too, and takes the first)."""
    return (_listed(path, "ignoring out-of-zone data", ignored)
            + _listed(path, "records with another TTL than the rest of their RRset (RFC 2181 "
                            "§5.2), each RRset given its lowest", mixed))


def mixed_ttl(where: int | str, owner: str, rdtype: str, ttl: int, rrset_ttl: int) -> str:
    """A `load_warnings` item: the record at `where` (a line number, or "FILE line N" in an
    included file) has `ttl`, its RRset so far `rrset_ttl`."""
    line = f"line {where}" if isinstance(where, int) else where
    return f"{line} {owner} {rdtype} TTL {ttl}, the RRset's {rrset_ttl}"


def _listed(path: str, what: str, items: list[str]) -> list[str]:
    if not items:
        return []
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return [f"{path}: {what}: {', '.join(items[:5])}{more}"]


class CnameCheck:
    """CNAME and other data (RFC 1034 §3.6.2, RFC 2181 §10.1) refused at the line of the later
    record, as dnspython's reader refuses it; told of each new RRset once."""

    def __init__(self, path: str, refuse: bool = True) -> None:
        self.path = path
        self.refuse = refuse  # False: the verifier reports the clash as a finding instead
        self.cnames: dict[Key, tuple[int, str, str]] = {}  # owner → its CNAME's line, name, text

    def error(self, lineno: int, owner: str, line: str) -> InputError:
        return InputError(f"CNAME and other data at {owner}: {excerpt(line)}", file=self.path, line=lineno)

    def new_rrset(self, key: Key, owner: str, rdtype: int, lineno: int, line: str) -> None:
        if not self.refuse:
            return
        if rdtype == dns.rdatatype.CNAME:
            self.cnames.setdefault(key, (lineno, owner, line))
        elif self.cnames and key in self.cnames and clashes_with_cname(rdtype):
            raise self.error(lineno, owner, line)

    def finish(self, rrsets: Iterable[tuple[Key, int]]) -> None:
        """A CNAME that came after other data at its name (the earliest such line)."""
        if self.cnames:
            clashes = [self.cnames[k] for k, t in rrsets if k in self.cnames and clashes_with_cname(t)]
            if clashes:
                raise self.error(*min(clashes))


def check_apex(has_soa: bool, has_ns: bool, zone_origin: dns.name.Name, path: str) -> None:
    if not has_soa:
        raise InputError(f"no SOA record at the zone apex {zone_origin}", file=path)
    if not has_ns:
        raise InputError(f"no NS records at the zone apex {zone_origin}", file=path)


def parse(
    text: str | Iterable[str], path: str, zone_origin: dns.name.Name
) -> tuple[list[RRsetRec], list[str]]:
    """Parse a master file (its text, or its lines as `logical_lines` takes them) into
    RRsets; returns (rrsets, warnings). One loop on purpose: it runs once per record of a
    million-name zone, and its locals stay local (the pieces it calls are named helpers)."""
    state = _State(_Origin(zone_origin))
    zkey = state.origin.key
    zlen = len(zkey)
    types: dict[str, int] = {}
    # (key, type) → [owner text, smallest TTL, wire, text] or, from a second record on,
    # [owner text, smallest TTL, {wire: text}]
    sets: dict[tuple[Key, int], list] = {}  # type: ignore[type-arg]
    ignored: list[str] = []
    mixed: list[str] = []  # records whose TTL differs from their RRset's (load_warnings)
    cnames = CnameCheck(path)
    for lineno, line in logical_lines(text, path):
        try:
            if line[0] == "$":
                state.directive(line)
                continue
            if line[0] in " \t":
                owner = state.last_owner()
                rest = line
            else:
                parts = line.split(None, 1)
                if parts[0] != state.owner_tok:  # a new owner (None after $ORIGIN)
                    state.owner, state.owner_tok = _name(parts[0], state.origin), parts[0]
                owner = state.owner
                rest = parts[1] if len(parts) > 1 else ""
            # TTL and class (IN only) come in either order before the type.
            ttl: int | None = None
            parts = rest.split(None, 1)
            tok = parts[0] if parts else ""
            after = parts[1] if len(parts) > 1 else ""
            for _ in range(2):
                if tok == "IN":
                    pass
                elif tok[:1].isdigit():
                    ttl = dns.ttl.from_text(tok)
                elif not is_class(tok):
                    break
                parts = after.split(None, 1)
                tok = parts[0] if parts else ""
                after = parts[1] if len(parts) > 1 else ""
            rdtype = types.get(tok)
            if rdtype is None:
                rdtype = types[tok] = dns.rdatatype.from_text(tok)
            wire, rtext = _rdata(rdtype, after, state.origin)
            check_rdata_size(wire)
            if ttl is None and state.default_ttl is not None and rdtype != _SOA:
                ttl = state.default_ttl  # the common case of `ttl_for`, without the call
            else:
                ttl = state.ttl_for(ttl, rdtype, wire)
        except NeedsFullReader:
            raise
        except (ValueError, dns.exception.DNSException) as exc:
            raise bad_record(exc, path, lineno, line) from None
        key = owner[0]
        if key[:zlen] != zkey:
            ignored.append(f"line {lineno} {owner[1]}")
            continue
        entry = sets.get((key, rdtype))
        if entry is None:  # most RRsets hold one record: no inner dict until a second one
            cnames.new_rrset(key, owner[1], rdtype, lineno, line)
            sets[(key, rdtype)] = [owner[1], ttl, wire, rtext]
        else:
            if ttl != entry[1]:
                # (RRSIGs are kept per name here, not per covered type: theirs may differ,
                # RFC 4034 §3; the signer makes its own anyway)
                if rdtype != dns.rdatatype.RRSIG:
                    mixed.append(mixed_ttl(lineno, owner[1], dns.rdatatype.to_text(rdtype), ttl,
                                           entry[1]))
                entry[1] = min(entry[1], ttl)
            if len(entry) == 4:
                entry[2:] = [{entry[2]: entry[3]}]
            entry[2][wire] = rtext
    cnames.finish(sets)
    warnings = load_warnings(path, ignored, mixed)
    present = {t for (k, t) in sets if k == zkey}
    rrsets = []
    while sets:  # pop as we go, so the parse table and the records are not both held whole
        (k, t), entry = sets.popitem()
        if len(entry) == 4:
            rrsets.append(RRsetRec(k, entry[0], t, entry[1], (entry[2],), (entry[3],)))
        else:
            rrsets.append(make_rrset(k, entry[0], t, entry[1], entry[2].items()))
    check_apex(_SOA in present, dns.rdatatype.NS in present, zone_origin, path)
    return rrsets, warnings
