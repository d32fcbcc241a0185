"""A small signed hierarchy for validator tests, built in memory with sigchain's own signer.

    .                root (NSEC)           anchor: DS of its KSK
    test.            TLD (NSEC)            delegates example, nsec3, optout (signed, DS) and
                                           insecure (no DS)
    example.test.    NSEC zone             data, wildcard, ENT, CNAMEs, DNAME, an unsigned sub
    nsec3.test.      NSEC3, no opt-out     data, wildcard, ENT, a signed and an unsigned child
    optout.test.     NSEC3 with opt-out    an unsigned child
    insecure.test.   not signed at all

Zones are signed bottom-up so each parent carries its children's DS records. `now` is fixed.
Evidence for a question is then assembled by hand, as a tracer would from real responses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.DS
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms, ds, keyfile
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.sign import signer
from sigchain.core.validate.proofs import Nsec3Record, NsecRecord
from sigchain.core.validate.validator import Evidence, Question, ZoneCut
from sigchain.core.zone.nsec3hash import Nsec3Params, nsec3_digest
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming
from tests.zonetools import sign_nodes, sign_rrset

N = dns.name.from_text
NOW = 1_800_000_000
DAY = 86400
TTL = 3600

Records = dict[str, list[tuple[str, tuple[str, ...]]]]


def make_key(zone: dns.name.Name, role: KeyRole, alg: int = 13, flags: int | None = None) -> KeyPair:
    a = algorithms.get(alg)
    priv = algorithms.generate(a)
    dnskey = keyfile.make_dnskey(a, priv, role.flags if flags is None else flags)
    return KeyPair(zone, alg, dnskey, priv, KeyTiming())


def rdataset(rdtype: str, *texts: str, ttl: int = TTL) -> dns.rdataset.Rdataset:
    return dns.rdataset.from_text("IN", rdtype, ttl, *texts)


@dataclass
class Zone:
    origin: dns.name.Name
    keys: list[KeyPair]
    nodes: dict[dns.name.Name, list[dns.rdataset.Rdataset]] = field(default_factory=dict)
    signed: bool = True

    @property
    def ksks(self) -> list[KeyPair]:
        return [k for k in self.keys if k.is_sep]

    def ds_rdatas(self, digest: int = 2) -> list[dns.rdata.Rdata]:
        if digest != 1:
            return [ds.make_ds(self.origin, k.dnskey, digest) for k in self.ksks]
        # sigchain refuses to produce SHA-1 DS records; tests need them as a parent would publish
        wire = self.origin.canonicalize().to_wire() or b""
        return [dns.rdtypes.ANY.DS.DS(dns.rdataclass.IN, RdataType.DS, k.key_tag, k.algorithm, 1,
                                      hashlib.sha1(wire + k.dnskey.to_digestable()).digest())
                for k in self.ksks]

    def rrsets(self, name: dns.name.Name | str, rdtype: int | str, sigs: bool = True,
               owner: dns.name.Name | None = None) -> tuple[dns.rrset.RRset, ...]:
        """The RRset (name, rdtype) and, when signed, its RRSIG RRset; `owner` renames both
        (as a server does when it expands a wildcard)."""
        name = N(name) if isinstance(name, str) else name
        rdtype = dns.rdatatype.from_text(rdtype) if isinstance(rdtype, str) else rdtype
        out = []
        for rds in self.nodes.get(name, []):
            if rds.rdtype == rdtype or (sigs and rds.rdtype == RdataType.RRSIG and rds.covers == rdtype):
                rrset = dns.rrset.RRset(owner or name, rds.rdclass, rds.rdtype, rds.covers)
                rrset.update(rds)
                out.append(rrset)
        if not any(r.rdtype == rdtype for r in out):
            raise KeyError(f"{name} {dns.rdatatype.to_text(rdtype)} not in {self.origin}")
        return tuple(out)

    def denial(self, *names: dns.name.Name | str) -> tuple[dns.rrset.RRset, ...]:
        """The NSEC or NSEC3 RRsets (with RRSIGs) at the given owners."""
        out: list[dns.rrset.RRset] = []
        for name in names:
            n = N(name) if isinstance(name, str) else name
            for t in (RdataType.NSEC, RdataType.NSEC3):
                if any(r.rdtype == t for r in self.nodes.get(n, [])):
                    out += self.rrsets(n, t)
        return tuple(out)

    def all_denial(self) -> tuple[dns.rrset.RRset, ...]:
        return self.denial(*[n for n, rs in self.nodes.items()
                             if any(r.rdtype in (RdataType.NSEC, RdataType.NSEC3) for r in rs)])

    def nsec3_records(self) -> list[Nsec3Record]:
        out = []
        for name, rdatasets in self.nodes.items():
            for rds in rdatasets:
                if rds.rdtype == RdataType.NSEC3:
                    out += [r for r in (Nsec3Record.from_rdata(name, rd) for rd in rds) if r]
        return out

    def nsec_owner(self, name: dns.name.Name | str, cover: bool = False) -> dns.name.Name:
        """The owner of the NSEC record that matches (or covers) `name`."""
        name = N(name) if isinstance(name, str) else name
        for owner, rdatasets in self.nodes.items():
            for rds in rdatasets:
                if rds.rdtype == RdataType.NSEC:
                    record = NsecRecord.from_rdata(owner, rds[0])
                    if (record.covers(name) if cover else owner == name):
                        return owner
        raise KeyError(f"no NSEC {'covers' if cover else 'matches'} {name}")

    @property
    def zsk(self) -> KeyPair:
        return next(k for k in self.keys if not k.is_sep)

    def sign(self, owner: str, rdtype: str, *texts: str, ttl: int = TTL, key: KeyPair | None = None,
             signer_name: dns.name.Name | None = None, sign_as: str | None = None,
             inception: int = NOW - DAY, expiration: int = NOW + 30 * DAY) -> tuple[dns.rrset.RRset, ...]:
        """An RRset at `owner` with a fresh RRSIG (by default by this zone's ZSK); `sign_as`
        signs it under another owner, as a wildcard is signed under `*.`."""
        rds = rdataset(rdtype, *texts, ttl=ttl)
        sig = sign_rrset(N(sign_as or owner), rds.rdtype, ttl, list(rds), key or self.zsk,
                               signer_name or self.origin, inception, expiration)
        data = dns.rrset.RRset(N(owner), rds.rdclass, rds.rdtype)
        data.update(rds)
        return data, dns.rrset.from_rdata(N(owner), ttl, sig)

    def nsec3_owner(self, name: dns.name.Name | str, cover: bool = False) -> dns.name.Name:
        """The owner of the NSEC3 record that matches (or covers) `name`."""
        name = N(name) if isinstance(name, str) else name
        records = self.nsec3_records()
        digest = nsec3_digest(name, records[0].salt, records[0].iterations)
        for r in records:
            if (r.covers(digest) if cover else r.hash == digest):
                return r.owner
        raise KeyError(f"no NSEC3 {'covers' if cover else 'matches'} {name}")


def build(origin: str, records: Records, keys: Sequence[KeyPair] | None = None,
          nsec3: Nsec3Params | None = None, inception: int = NOW - DAY, validity: int = 30 * DAY,
          now: int = NOW, signed: bool = True) -> Zone:
    o = N(origin)
    ns, mbox = dns.name.from_text("ns", o), dns.name.from_text("hostmaster", o)
    data: dict[dns.name.Name, list[dns.rdataset.Rdataset]] = {
        o: [rdataset("SOA", f"{ns} {mbox} 1 7200 3600 1209600 300"), rdataset("NS", f"{ns}")],
    }
    for rel, entries in records.items():
        name = o if rel == "@" else dns.name.from_text(rel, o)
        for rdtype, texts in entries:
            data.setdefault(name, []).append(rdataset(rdtype, *texts))
    if not signed:
        return Zone(o, [], data, signed=False)
    keys = list(keys) if keys is not None else [make_key(o, KeyRole.KSK), make_key(o, KeyRole.ZSK)]
    opts = signer.SignOptions(SigWindow(inception, validity, 0), nsec3)
    return Zone(o, keys, sign_nodes(data, o, keys, opts, now))


def ds_entries(child: Zone, digest: int = 2) -> list[tuple[str, tuple[str, ...]]]:
    return [("DS", tuple(rd.to_text() for rd in child.ds_rdatas(digest)))]


@dataclass
class Lab:
    zones: dict[dns.name.Name, Zone]

    def __getitem__(self, name: str) -> Zone:
        return self.zones[N(name)]

    def anchors(self) -> list[dns.rrset.RRset]:
        root = self["."]
        return [dns.rrset.from_rdata_list(dns.name.root, TTL, root.ds_rdatas())]

    def cut(self, name: str | dns.name.Name) -> ZoneCut:
        """The zone's DS (or the parent's proof of no DS) and its DNSKEY RRset, as a tracer
        collects them from the parent's and the zone's servers."""
        n = N(name) if isinstance(name, str) else name
        zone = self.zones[n]
        dnskey = zone.rrsets(n, "DNSKEY") if zone.signed else ()
        if n == dns.name.root:
            return ZoneCut(n, dnskey=dnskey)
        parent = self.zones[n.parent()]
        if any(r.rdtype == RdataType.DS for r in parent.nodes.get(n, [])):
            return ZoneCut(n, ds=parent.rrsets(n, "DS"), dnskey=dnskey)
        return ZoneCut(n, ds_denial=self.no_ds_proof(parent, n), dnskey=dnskey)

    def no_ds_proof(self, parent: Zone, child: dns.name.Name) -> tuple[dns.rrset.RRset, ...]:
        records = parent.nsec3_records()
        if not records:
            return parent.denial(child)
        try:
            return parent.denial(parent.nsec3_owner(child))
        except KeyError:  # opt-out: closest provable encloser (the apex) + the covering record
            return parent.denial(parent.nsec3_owner(parent.origin), parent.nsec3_owner(child, cover=True))

    def chain(self, *names: str) -> tuple[ZoneCut, ...]:
        """Zone cuts from the root down to each of `names` (every zone on each path)."""
        seen: list[dns.name.Name] = []
        for name in names:
            n = N(name)
            path = [n.split(i)[1] for i in range(1, len(n) + 1)]
            for z in path:
                if z in self.zones and z not in seen:
                    seen.append(z)
        return tuple(self.cut(z) for z in seen)

    def evidence(self, qname: str, qtype: str, answer: Iterable[dns.rrset.RRset] = (),
                 authority: Iterable[dns.rrset.RRset] = (), rcode: int = 0,
                 zones: Sequence[str] | None = None) -> Evidence:
        q = Question(N(qname), dns.rdatatype.from_text(qtype))
        chain = self.chain(*(zones if zones is not None else [qname]))
        return Evidence(q, rcode, tuple(answer), tuple(authority), chain)


def build_lab(now: int = NOW) -> Lab:
    """The hierarchy of the module docstring, signed for `now`."""
    example = build("example.test.", {
        "ns": [("A", ("192.0.2.1",))],
        "www": [("A", ("192.0.2.10",)), ("TXT", ('"www"',))],
        "multi": [("A", ("192.0.2.11", "192.0.2.12", "192.0.2.13"))],
        "alias": [("CNAME", ("www.example.test.",))],
        "outside": [("CNAME", ("www.nsec3.test.",))],
        "toinsecure": [("CNAME", ("host.insecure.test.",))],
        "*.wild": [("TXT", ('"wildcard"',))],
        "a.b.c": [("A", ("192.0.2.20",))],
        "sub": [("NS", ("ns.sub.example.test.",))],
        "ns.sub": [("A", ("192.0.2.30",))],
        "dn": [("DNAME", ("nsec3.test.",))],
    }, now=now)
    nsec3_child = build("child.nsec3.test.", {"www": [("A", ("192.0.2.50",))]}, now=now)
    nsec3 = build("nsec3.test.", {
        "ns": [("A", ("192.0.2.1",))],
        "www": [("A", ("192.0.2.40",))],
        "*.wild": [("TXT", ('"wildcard"',))],
        "a.b.c": [("A", ("192.0.2.41",))],
        "child": [("NS", ("ns.child.nsec3.test.",))] + ds_entries(nsec3_child),
        "ns.child": [("A", ("192.0.2.42",))],
        "unsigned": [("NS", ("ns.unsigned.nsec3.test.",))],
        "ns.unsigned": [("A", ("192.0.2.43",))],
    }, nsec3=Nsec3Params(), now=now)
    optout = build("optout.test.", {
        "ns": [("A", ("192.0.2.1",))],
        "www": [("A", ("192.0.2.60",))],
        "unsigned": [("NS", ("ns.unsigned.optout.test.",))],
        "ns.unsigned": [("A", ("192.0.2.61",))],
    }, nsec3=Nsec3Params(opt_out=True), now=now)
    insecure = build("insecure.test.", {"host": [("A", ("192.0.2.70",))]}, signed=False)
    tld = build("test.", {
        "ns": [("A", ("192.0.2.1",))],
        "example": [("NS", ("ns.example.test.",))] + ds_entries(example),
        "nsec3": [("NS", ("ns.nsec3.test.",))] + ds_entries(nsec3),
        "optout": [("NS", ("ns.optout.test.",))] + ds_entries(optout),
        "insecure": [("NS", ("ns.insecure.test.",))],
    }, now=now)
    root = build(".", {
        "ns": [("A", ("192.0.2.1",))],
        "test": [("NS", ("ns.test.",))] + ds_entries(tld),
    }, now=now)
    zones = [root, tld, example, nsec3, nsec3_child, optout, insecure]
    return Lab({z.origin: z for z in zones})
