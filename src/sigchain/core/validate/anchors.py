"""Trust anchors and root hints (pure): the built-in IANA ones, and parsers for the text forms
users hand us — zone-file DS/DNSKEY records (any owner) or BIND `trust-anchors { … };`
(also the older `managed-keys` and `trusted-keys`), and a root hints file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.ttl
import dns.zonefile
from dns.rdatatype import RdataType

from sigchain.errors import InputError

# https://data.iana.org/root-anchors/root-anchors.xml: KSK-2017 and KSK-2024, as DS (SHA-256).
IANA_ROOT_ANCHORS = """\
. IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
. IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16
"""

# https://www.internic.net/domain/named.root: the thirteen root server identities.
IANA_ROOT_SERVERS: tuple[tuple[str, str, str], ...] = (
    ("a.root-servers.net.", "198.41.0.4", "2001:503:ba3e::2:30"),
    ("b.root-servers.net.", "170.247.170.2", "2801:1b8:10::b"),
    ("c.root-servers.net.", "192.33.4.12", "2001:500:2::c"),
    ("d.root-servers.net.", "199.7.91.13", "2001:500:2d::d"),
    ("e.root-servers.net.", "192.203.230.10", "2001:500:a8::e"),
    ("f.root-servers.net.", "192.5.5.241", "2001:500:2f::f"),
    ("g.root-servers.net.", "192.112.36.4", "2001:500:12::d0d"),
    ("h.root-servers.net.", "198.97.190.53", "2001:500:1::53"),
    ("i.root-servers.net.", "192.36.148.17", "2001:7fe::53"),
    ("j.root-servers.net.", "192.58.128.30", "2001:503:c27::2:30"),
    ("k.root-servers.net.", "193.0.14.129", "2001:7fd::1"),
    ("l.root-servers.net.", "199.7.83.42", "2001:500:9f::42"),
    ("m.root-servers.net.", "202.12.27.33", "2001:dc3::35"),
)

DEFAULT_PORT = 53


@dataclass(frozen=True, order=True)
class Server:
    """A name server address to send queries to."""

    host: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        return self.host if self.port == DEFAULT_PORT else f"{self.host}#{self.port}"

    @property
    def ipv6(self) -> bool:
        return ":" in self.host


def parse_server(text: str, port: int | None = None, what: str = "server") -> Server:
    """`ADDR` or `ADDR#PORT` as BIND writes it (an IPv4 or IPv6 literal); `port` (from -p)
    applies when the text has none. `what` names the thing in error messages."""
    host, sep, port_text = text.partition("#")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise InputError(f"bad {what} {text!r}: expected an IP address, ADDR[#PORT]") from None
    if sep:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InputError(f"bad port in {what} {text!r}")
        if port is not None and port != int(port_text):
            raise InputError(f"server {text!r} and -p {port} name different ports")
        return Server(host, int(port_text))
    if port is not None and not 0 < port < 65536:
        raise InputError(f"bad port {port}")
    return Server(host, port if port is not None else DEFAULT_PORT)


def ipv4_first(servers: Iterable[Server]) -> tuple[Server, ...]:
    """Servers in a stable order, IPv4 before IPv6 (many hosts have no IPv6 route)."""
    unique = list(dict.fromkeys(servers))
    return tuple(sorted(unique, key=lambda s: s.ipv6))


def root_hint_servers() -> tuple[Server, ...]:
    return ipv4_first([Server(v4) for _, v4, _ in IANA_ROOT_SERVERS]
                      + [Server(v6) for _, _, v6 in IANA_ROOT_SERVERS])


def _group(rdatas: Iterable[tuple[dns.name.Name, dns.rdata.Rdata]]) -> list[dns.rrset.RRset]:
    out: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
    for name, rd in rdatas:
        key = (name, rd.rdtype)
        if key not in out:
            out[key] = dns.rrset.RRset(name, dns.rdataclass.IN, rd.rdtype)
        out[key].add(rd)
    return list(out.values())


def _logical_records(text: str) -> list[tuple[int, str]]:
    """Zone-file text as (first line number, record) pairs: comments dropped, parenthesised
    records joined, a blank owner filled in from the record before (RFC 1035 §5.1)."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start, depth, owner = 0, 0, ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0]
        if not pending:
            if not line.strip():
                continue
            start = number
            if line[:1].isspace() and owner:
                line = owner + line
        pending.append(line)
        depth += line.count("(") - line.count(")")
        if depth <= 0:
            record = " ".join(pending).replace("(", " ").replace(")", " ")
            if not record.startswith("$"):
                owner = record.split()[0]
            out.append((start, record))
            pending, depth = [], 0
    if pending:
        out.append((start, " ".join(pending)))
    return out


def _zone_records(text: str, source: str, allowed: tuple[int, ...], what: str) -> list[dns.rrset.RRset]:
    """Records in zone-file syntax ($ORIGIN and $TTL understood; owners relative to the root
    otherwise), each parsed on its own so that an error names its line."""
    rrsets: list[dns.rrset.RRset] = []
    origin, ttl = dns.name.root, 0
    for number, record in _logical_records(text):
        try:
            if record.startswith("$"):
                directive, *args = record.split()
                if directive.upper() == "$ORIGIN" and len(args) == 1:
                    origin = dns.name.from_text(args[0], origin)
                elif directive.upper() == "$TTL" and len(args) == 1:
                    ttl = dns.ttl.from_text(args[0])
                else:
                    raise dns.exception.SyntaxError(f"unsupported directive {record!r}")
                continue
            rrsets += dns.zonefile.read_rrsets(record, origin=origin, relativize=False,
                                               default_ttl=ttl, rdclass=None)
        except dns.exception.DNSException as exc:
            why = re.sub(r"^[^:]*:\d+: ", "", str(exc)) or type(exc).__name__
            raise InputError(f"not {what}: {why}", file=source, line=number) from None
        if rrsets[-1].rdtype not in allowed:
            raise InputError(f"{rrsets[-1].name} {dns.rdatatype.to_text(rrsets[-1].rdtype)}: not {what}",
                             file=source, line=number)
    return rrsets


_BIND_BLOCK = re.compile(r"\b(trust-anchors|managed-keys|trusted-keys)\s*\{")
_TOKEN = re.compile(r'"(?P<q>[^"]*)"|(?P<p>[{};])|(?P<w>[^\s{};"]+)')


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    return re.sub(r"(#|//)[^\n]*", " ", text)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _bind_anchors(text: str, source: str) -> list[dns.rrset.RRset]:
    """`trust-anchors { NAME static-ds|initial-ds TAG ALG DT "HEX";
    NAME static-key|initial-key FLAGS PROTO ALG "BASE64"; };` (and the older `managed-keys`
    with initial-key, and `trusted-keys` with no keyword)."""
    clean = _strip_comments(text)
    tokens = [(m.start(), m.group("q") if m.group("q") is not None else m.group("p") or m.group("w"),
               m.group("q") is not None) for m in _TOKEN.finditer(clean)]
    rdatas: list[tuple[dns.name.Name, dns.rdata.Rdata]] = []
    i = 0

    def fail(pos: int, message: str) -> InputError:
        return InputError(message, file=source, line=_line_of(clean, pos))

    while i < len(tokens):
        pos, tok, quoted = tokens[i]
        if quoted or tok not in ("trust-anchors", "managed-keys", "trusted-keys"):
            raise fail(pos, f"unexpected {tok!r}: expected trust-anchors {{ … }};")
        block = tok
        if i + 1 >= len(tokens) or tokens[i + 1][1] != "{":
            raise fail(pos, f"expected '{{' after {block}")
        i += 2
        while i < len(tokens) and tokens[i][1] != "}":
            start = i
            entry: list[tuple[int, str, bool]] = []
            while i < len(tokens) and not (tokens[i][1] == ";" and not tokens[i][2]):
                entry.append(tokens[i])
                i += 1
            if i >= len(tokens):
                raise fail(tokens[start][0], "entry not ended by ';'")
            i += 1  # the ';'
            rdatas.append(_bind_entry(block, entry, fail))
        if i >= len(tokens):
            raise fail(pos, f"{block} block not closed by '}}'")
        i += 1  # the '}'
        if i < len(tokens) and tokens[i][1] == ";":
            i += 1
    return _group(rdatas)


def _bind_entry(block: str, entry: list[tuple[int, str, bool]], fail) -> tuple[dns.name.Name, dns.rdata.Rdata]:  # type: ignore[no-untyped-def]
    pos = entry[0][0]
    words = [t for _, t, _ in entry]
    try:
        owner = dns.name.from_text(words[0])
    except dns.exception.DNSException:
        raise fail(pos, f"bad name {words[0]!r} in {block}") from None
    if block == "trusted-keys":
        kind, rest = "static-key", words[1:]
    else:
        if len(words) < 2:
            raise fail(pos, f"incomplete entry for {owner} in {block}")
        kind, rest = words[1], words[2:]
    if kind in ("static-ds", "initial-ds"):
        rdtype, expected = RdataType.DS, 4
    elif kind in ("static-key", "initial-key"):
        rdtype, expected = RdataType.DNSKEY, 4
    else:
        raise fail(pos, f"unknown anchor type {kind!r} for {owner}: expected static-ds, "
                        "initial-ds, static-key or initial-key")
    if len(rest) != expected:
        raise fail(pos, f"{kind} for {owner} needs {expected} fields, has {len(rest)}")
    rest[-1] = "".join(rest[-1].split())  # quoted digest/key may span lines
    try:
        rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, " ".join(rest))
    except dns.exception.DNSException as exc:
        raise fail(pos, f"bad {kind} for {owner}: {exc}") from None
    return owner, rd


def parse_anchors(text: str, source: str = "<anchors>") -> list[dns.rrset.RRset]:
    """DS or DNSKEY trust anchors, grouped into RRsets by owner, from zone-file records or BIND
    syntax. Anything that is not DS or DNSKEY is refused (exit 2), naming the file."""
    if _BIND_BLOCK.search(_strip_comments(text)):
        rrsets = _bind_anchors(text, source)
    else:
        rrsets = _zone_records(text, source, (RdataType.DS, RdataType.DNSKEY),
                               "a DS or DNSKEY trust anchor (or a trust-anchors clause)")
    for r in rrsets:
        if r.rdtype not in (RdataType.DS, RdataType.DNSKEY):
            raise InputError(f"{r.name} {dns.rdatatype.to_text(r.rdtype)} is not a trust anchor: "
                             "expected DS or DNSKEY records", file=source)
        if r.rdclass != dns.rdataclass.IN:
            raise InputError(f"{r.name}: trust anchors must be class IN", file=source)
    if not rrsets:
        raise InputError("no DS or DNSKEY trust anchor found", file=source)
    return _group((r.name, rd) for r in rrsets for rd in r)


def iana_root_anchors() -> list[dns.rrset.RRset]:
    return parse_anchors(IANA_ROOT_ANCHORS, "built-in IANA root anchors")


def parse_root_hints(text: str, source: str = "<root hints>") -> tuple[Server, ...]:
    """A root hints file (named.root form): the addresses of the root's NS names, or of every
    A/AAAA record when the file lists no NS for the root."""
    rrsets = _zone_records(text, source, (RdataType.NS, RdataType.A, RdataType.AAAA),
                           "a root hint (NS, A or AAAA record)")
    ns_names = {rd.target for r in rrsets if r.rdtype == RdataType.NS and r.name == dns.name.root
                for rd in r}  # type: ignore[attr-defined]
    servers = [Server(rd.address) for r in rrsets if r.rdtype in (RdataType.A, RdataType.AAAA)
               and (not ns_names or r.name in ns_names) for rd in r]  # type: ignore[attr-defined]
    if not servers:
        raise InputError("no root server addresses (A/AAAA records of the root's NS names)", file=source)
    return ipv4_first(servers)
