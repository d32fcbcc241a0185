"""Helpers for tests that build, sign and deliberately break zones."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.RRSIG
import dns.zone

from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.sign import signer
from sigchain.core.sign.batches import BY_ZSK, Batch, SigningContext, sign_units
from sigchain.core.zone.records import from_rdataset, from_rdatasets, key_of, key_wire
from sigchain.edge import keystore, zonefile
from sigchain.model.keys import KeyPair
from sigchain.services import signing
from tests.conftest import sc

# Spellings both fast zone readers must take as dnspython's does: escapes outside quotes on a
# line without one, and RFC 3597 classes (records below the origin, for any test zone).
ESCAPES_AND_CLASSES = r"""semi TXT a\;b ; escaped outside quotes, no quote on the line
a\(b\) A 192.0.2.78
cls CLASS1 300 TYPE65400 \# 2 abcd
cls 300 CLASS1 A 192.0.2.79
paren TXT ( a\)b
  c )
"""

# A BIND `.state` file (dnssec-policy) of a CSK in use, its DS hidden: tests edit it.
BIND_CSK_STATE = """; This is the state of key 1, for example.test.
Algorithm: 13
Length: 256
Lifetime: 0
KSK: yes
ZSK: yes
Generated: 20260101000000 (Thu Jan  1 00:00:00 2026)
Published: 20260101000000 (Thu Jan  1 00:00:00 2026)
DNSKEYState: omnipresent
ZRRSIGState: omnipresent
KRRSIGState: omnipresent
DSState: hidden
GoalState: omnipresent
"""

Nodes = dict[dns.name.Name, list[dns.rdataset.Rdataset]]


def sign_text(nodes: Nodes, origin: dns.name.Name, keys: list[KeyPair], opts: signer.SignOptions,
              now: int) -> str:
    """Sign in-memory rdatasets in this process the way `sigchain sign` does (prepare, then the
    stream of signed batches); the signed zone's master-file text."""
    prep = signer.prepare(from_rdatasets(nodes), origin, keys, opts, now)
    return "".join(signing.sign_stream(prep, 1, signing.Tally([0] * len(prep.ctx.keys))))


def sign_rrset(owner: dns.name.Name, rdtype: int, ttl: int, rdatas: Sequence[dns.rdata.Rdata],
               key: KeyPair, signer_name: dns.name.Name, inception: int, expiration: int,
               deterministic: bool = False) -> dns.rdtypes.ANY.RRSIG.RRSIG:
    """One RRSIG by `key` over the RRset, made by the signer's own worker function
    (`sign_units` on a batch of this one RRset) and read back as rdata."""
    rds = dns.rdataset.Rdataset(dns.rdataclass.IN, rdtype)
    rds.update_ttl(ttl)
    for rd in rdatas:
        rds.add(rd)
    ctx = SigningContext(key_wire(key_of(signer_name)), signer_name.to_text(), (key,), (0,), (),
                         SigWindow(inception, expiration - inception, 0), deterministic)
    text, _, _ = sign_units(Batch([from_rdataset(owner, rds)], bytes([BY_ZSK]), []), ctx)
    rrsig_line = text.splitlines()[-1]
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.RRSIG,  # type: ignore[return-value]
                               rrsig_line.split(" IN RRSIG ", 1)[1])


def sign_nodes(nodes: Nodes, origin: dns.name.Name, keys: list[KeyPair], opts: signer.SignOptions,
               now: int) -> Nodes:
    """`sign_text`, read back as rdatasets per owner name."""
    z = dns.zone.from_text(sign_text(nodes, origin, keys, opts, now), origin, relativize=False,
                           check_origin=False)
    return {name: list(node.rdatasets) for name, node in z.nodes.items()}


def keygen(keydir: Path, zone: str, role: str, algorithm: str = "ecdsap256sha256") -> str:
    return sc("keygen", zone, "--role", role, "--algorithm", algorithm, "--dir", keydir, check=True).stdout.strip()


def keygen_apart(beside: Path, keydir: Path, zone: str, role: str) -> str:
    """A key of `zone` that the zone does not use: made beside its keys in `beside` (so with
    none of their tags, as keygen picks a tag) and then moved to `keydir`."""
    base = keygen(beside, zone, role)
    keydir.mkdir(mode=0o700, exist_ok=True)
    for ext in (".key", ".private"):
        (beside / (base + ext)).rename(keydir / (base + ext))
    return base


def load(path: Path, origin: str | None = None) -> zonefile.LoadedZone:
    return zonefile.load_zone(str(path), origin, require_ns=False)


def dump(path: Path, origin: dns.name.Name, nodes: Nodes) -> None:
    lines = [f"$ORIGIN {origin}\n"]
    for name in sorted(nodes):
        for rds in nodes[name]:
            lines.append(rds.to_text(name, relativize=False) + "\n")
    path.write_text("".join(lines))


def rdataset(nodes: Nodes, name: dns.name.Name, rdtype: int, covers: int = 0) -> dns.rdataset.Rdataset:
    for rds in nodes[name]:
        if rds.rdtype == rdtype and rds.covers == covers:
            return rds
    raise KeyError((name, rdtype, covers))


def drop(nodes: Nodes, name: dns.name.Name, rdtype: int, covers: int = 0) -> None:
    nodes[name] = [r for r in nodes[name] if not (r.rdtype == rdtype and r.covers == covers)]


def resign(nodes: Nodes, origin: dns.name.Name, name: dns.name.Name, rdtype: int, keys: list[KeyPair],
           inception: int, expiration: int) -> None:
    """Replace the RRSIGs over (name, rdtype) with fresh ones by `keys`."""
    rds = rdataset(nodes, name, rdtype)
    drop(nodes, name, dns.rdatatype.RRSIG, rdtype)
    sigs = dns.rdataset.Rdataset(rds.rdclass, dns.rdatatype.RRSIG, rdtype)
    sigs.update_ttl(rds.ttl)
    for k in keys:
        sigs.add(sign_rrset(name, rdtype, rds.ttl, list(rds), k, origin, inception, expiration))
    nodes[name].append(sigs)


def zone_keys(keydir: Path, origin: dns.name.Name) -> tuple[list[KeyPair], list[KeyPair]]:
    keys = keystore.load_zone_keys(str(keydir), origin)
    return [k for k in keys if k.is_sep], [k for k in keys if not k.is_sep]
