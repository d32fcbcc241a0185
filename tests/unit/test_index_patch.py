"""`ZoneIndex.patched`: random change sequences on NSEC and NSEC3 zones give, change after
change, the index `from_served` makes of the whole new zone (every lookup structure, and the
answers to a set of queries byte for byte), and the version patched stays as it was."""

from __future__ import annotations

import base64
import hashlib
import random

import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from dns.rdatatype import RdataType

from sigchain.core.serve import persist
from sigchain.core.serve.fastpath import respond
from sigchain.core.serve.fromwire import Served
from sigchain.core.serve.index import ZoneIndex, ZoneSet
from sigchain.core.serve.rrsets import _ITEMS, ServedRRset, tails_of
from sigchain.core.zone.records import key_of

ORIGIN = dns.name.from_text("example.test.")
# Names with depth, so that empty non-terminals, delegations with glue, occlusion under a
# DNAME and wildcards all come and go as records do.
NAMES = ["@", "a", "b", "c.a", "d.c.a", "e.d.c.a", "x.b", "y.x.b", "*", "*.b", "sub",
         "ns.sub", "deep.ns.sub", "dn", "w.dn", "m.n.o", "n.o", "z"]
TYPES = {  # type → rdata texts to draw from (relative names are in the zone)
    "A": ["192.0.2.1", "192.0.2.2"], "TXT": ['"one"', '"two"'], "MX": ["10 a", "20 z"],
    "NS": ["ns.sub", "ns1.other.test."], "DS": ["12345 13 2 " + "ab" * 32],
    "DNAME": ["target.test."], "CNAME": ["a"], "NSEC": ["a A RRSIG NSEC", "z TXT RRSIG NSEC"],
}
SOA = "ns1 hostmaster {serial} 3600 600 86400 {minimum}"


def _name(rel: str) -> dns.name.Name:
    return ORIGIN if rel == "@" else dns.name.from_text(rel, ORIGIN)


def _rrset(name: dns.name.Name, rdtype: int, texts: list[str], ttl: int,
           covers: int = 0) -> Served:
    wires = [dns.rdata.from_text(dns.rdataclass.IN, rdtype, t, origin=ORIGIN,
                                 relativize=False).to_wire()
             for t in texts]
    owner = name.to_wire()
    assert owner is not None
    return (key_of(name), owner, rdtype, covers, ttl, tails_of(rdtype, ttl, wires))


def _sig(name: dns.name.Name, covers: int, rng: random.Random) -> Served:
    text = (f"{dns.rdatatype.to_text(covers)} 13 {len(name) - 1} 300 20300101000000 "
            f"20200101000000 {rng.randrange(65536)} example.test. "
            + base64.b64encode(rng.randbytes(64)).decode())
    return _rrset(name, RdataType.RRSIG, [text], 300, covers)


def _nsec3(digest: bytes, rng: random.Random) -> tuple[dns.name.Name, Served]:
    label = base64.b32hexencode(digest).decode().lower().rstrip("=")
    name = dns.name.from_text(label, ORIGIN)
    nxt = base64.b32hexencode(rng.randbytes(20)).decode().rstrip("=")
    return name, _rrset(name, RdataType.NSEC3, [f"1 0 0 - {nxt} A RRSIG"], 300)


class Zone:
    """A zone as RRsets by (owner key, type, covered type), changed at random."""

    def __init__(self, rng: random.Random, nsec3: bool) -> None:
        self.rng, self.nsec3, self.serial = rng, nsec3, 1
        self.rrsets: dict[tuple, Served] = {}
        self.digests = [hashlib.sha1(bytes([i])).digest() for i in range(12)]
        self._soa()
        apex = _name("@")
        self._put(_rrset(apex, RdataType.NS, ["ns1.other.test."], 300))
        if nsec3:
            self._put(_rrset(apex, RdataType.NSEC3PARAM, ["1 0 0 -"], 0))
        for _ in range(12):
            self.step()

    def _put(self, s: Served) -> None:
        self.rrsets[(s[0], s[2], s[3])] = s

    def _soa(self) -> list[Served]:
        apex = _name("@")
        minimum = self.rng.choice([60, 300, 900])
        soa = _rrset(apex, RdataType.SOA, [SOA.format(serial=self.serial, minimum=minimum)], 300)
        sig = _sig(apex, RdataType.SOA, self.rng)
        self._put(soa)
        self._put(sig)
        return [soa, sig]

    def step(self) -> tuple[list[Served], list[Served]]:
        """One random change (a few RRsets removed and added, the SOA always replaced), as
        (removed, added)."""
        rng = self.rng
        removed = [self.rrsets[k] for k in list(self.rrsets)
                   if k[1] == RdataType.SOA or (k[1] == RdataType.RRSIG and k[2] == RdataType.SOA)]
        self.serial += 1
        added = self._soa()
        seen: set[tuple] = set()  # as a Diff: each RRset at most once removed, once added
        for _ in range(rng.randint(1, 4)):
            if self.nsec3 and rng.random() < 0.3:
                name, s = _nsec3(rng.choice(self.digests), rng)
            else:
                name = _name(rng.choice(NAMES))
                rdtype = dns.rdatatype.from_text(rng.choice(list(TYPES)))
                pool = TYPES[dns.rdatatype.to_text(rdtype)]
                texts = rng.sample(pool, rng.randint(1, len(pool)))
                s = _rrset(name, rdtype, texts, rng.choice([60, 300]))
            k = (s[0], s[2], s[3])
            if s[2] == RdataType.SOA or (s[0] == key_of(ORIGIN) and s[2] in (
                    RdataType.NS, RdataType.CNAME, RdataType.DNAME, RdataType.NSEC3PARAM)):
                continue
            sk = (s[0], RdataType.RRSIG, s[2])
            if k in seen or sk in seen:
                continue
            seen.update((k, sk))
            if k in self.rrsets and rng.random() < 0.6:  # delete the RRset and its RRSIG
                removed.append(self.rrsets.pop(k))
                if sk in self.rrsets:
                    removed.append(self.rrsets.pop(sk))
                continue
            if k in self.rrsets:
                removed.append(self.rrsets[k])
            self._put(s)
            added.append(s)
            if rng.random() < 0.7:
                sig = _sig(_name_of(s), s[2], rng)
                if sk in self.rrsets:
                    removed.append(self.rrsets[sk])
                self._put(sig)
                added.append(sig)
        return removed, added

    def whole(self) -> ZoneIndex:
        return ZoneIndex.from_served(ORIGIN, self.rrsets.values())


def _name_of(s: Served) -> dns.name.Name:
    return dns.name.from_wire(s[1], 0)[0]


def _rr(r: object) -> tuple | None:
    if r is None:
        return None
    return (r.owner.lower(), r.rdtype, r.covers, r.ttl, r.tails)  # type: ignore[attr-defined]


def _node(n: object) -> tuple:
    return ({t: _rr(r) for t, r in n.rrsets.items()},  # type: ignore[attr-defined]
            {t: _rr(r) for t, r in n.sigs.items()})  # type: ignore[attr-defined]


def structures(z: ZoneIndex) -> dict[str, object]:
    """Every lookup structure of `z`, as plain values."""
    return {
        "by_key": {k: _node(n) for k, n in z.by_key.items()},
        "names": sorted(map(str, z.nodes)),
        "kinds": dict(z.kind_by_key), "cuts": z.cut_keys, "dnames": z.dname_keys,
        "nsec_keys": z.nsec_keys, "nsec_order": z.nsec_order, "denial": z.denial,
        "nsec3_hashes": z.nsec3_hashes,
        "nsec3_nodes": {d: _node(n) for d, n in z.nsec3_nodes.items()},
        "nsec3": (z.nsec3_salt, z.nsec3_iterations), "okey": z.okey,
        "soa": (_rr(z.soa), _rr(z.negative_soa), _rr(z.negative_soa_sig)),
    }


QUERIES = [(n, t) for n in [*NAMES, "nope", "q.a", "q.c.a", "q.b", "q.x.b", "q.w.dn", "q.ns.sub",
                             "q.deep.ns.sub", "o", "q.n.o"]
           for t in ("A", "TXT", "NS", "DS", "MX", "SOA", "DNAME", "NSEC", "NSEC3PARAM", "ANY")]


_WIRES = [dns.message.make_query(_name(rel), rdtype, want_dnssec=True, id=i).to_wire()
          for i, (rel, rdtype) in enumerate(QUERIES)]


def answers(z: ZoneIndex) -> list[bytes | str | None]:
    """The server's wire responses (DNSSEC OK, over TCP: no truncation) to `QUERIES`. The
    random zones lack the NSEC records some proofs look for: those fail, and must fail alike."""
    zs = ZoneSet([z])
    out: list[bytes | str | None] = []
    for q in _WIRES:
        try:
            out.append(respond(zs, q, tcp=True))
        except (KeyError, LookupError) as exc:
            out.append(repr(exc))
    return out


@pytest.fixture(params=["whole", "pieces"])
def pieces(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The index's maps and sorted lists as plain dicts and tuples (a small zone), or in
    tiny shards and chunks (as a big zone's are, see core.serve.persist)."""
    if request.param == "pieces":
        for name, value in (("SHARD_MIN", 4), ("SHARD_SIZE", 2), ("GROUP_SHARDS", 2),
                            ("CHUNK_MIN", 4), ("CHUNK_SIZE", 2), ("BLOCK_SIZE", 2)):
            monkeypatch.setattr(persist, name, value)
    return str(request.param)


@pytest.mark.parametrize("nsec3", [False, True], ids=["nsec", "nsec3"])
@pytest.mark.parametrize("seed", range(3))
def test_patched_equals_a_whole_rebuild_change_after_change(nsec3: bool, seed: int,
                                                            pieces: str) -> None:
    zone = Zone(random.Random(seed * 2 + nsec3), nsec3)
    index = zone.whole()
    for _ in range(20):
        before = structures(index)
        removed, added = zone.step()
        new = index.patched(removed, added)
        assert structures(index) == before  # the old version is left as it was
        whole = zone.whole()
        assert structures(new) == structures(whole)
        assert answers(new) == answers(whole)
        index = new


def test_patched_shares_the_unchanged_nodes() -> None:
    zone = Zone(random.Random(99), nsec3=True)
    index = zone.whole()
    removed, added = zone.step()
    new = index.patched(removed, added)
    touched = {s[1].lower() for s in removed + added}
    for k, node in index.by_key.items():
        if k not in touched and k in new.by_key:
            assert new.by_key[k] is node


def _big(names: int, rng: random.Random) -> dict[tuple, Served]:
    """An NSEC3-signed zone of `names` names (one A record each), by (key, type, covers)."""
    out: dict[tuple, Served] = {}
    apex = _name("@")
    for s in (_rrset(apex, RdataType.SOA, [SOA.format(serial=1, minimum=300)], 300),
              _sig(apex, RdataType.SOA, rng), _rrset(apex, RdataType.NS, ["ns1.other.test."], 300),
              _rrset(apex, RdataType.NSEC3PARAM, ["1 0 0 -"], 0)):
        out[(s[0], s[2], s[3])] = s
    for i in range(names):
        name = _name(f"h{i}")
        for s in (_rrset(name, RdataType.A, ["192.0.2.1"], 300), _sig(name, RdataType.A, rng),
                  _nsec3(hashlib.sha1(name.to_wire() or b"").digest(), rng)[1]):
            out[(s[0], s[2], s[3])] = s
    return out


@pytest.mark.parametrize("names", [2000, 20000])
def test_a_one_name_change_copies_a_few_shards_and_one_chunk(names: int) -> None:
    """What `patched` copies for one name added (its A, RRSIG and NSEC3 record, a neighbour's
    NSEC3 and the SOA replaced): a few shards of each map and one chunk of the hash list;
    everything else is shared with the version before."""
    rng = random.Random(names)
    zone = _big(names, rng)
    old = ZoneIndex.from_served(ORIGIN, zone.values())
    name = _name("added")
    digest = hashlib.sha1(name.to_wire() or b"").digest()
    neighbour = old.nsec3_hashes[persist.bisect_right(old.nsec3_hashes, digest) - 1]
    label = base64.b32hexencode(neighbour).decode().lower().rstrip("=")
    before = zone[(key_of(dns.name.from_text(label, ORIGIN)), RdataType.NSEC3, 0)]
    soa = [s for k, s in zone.items() if k[1] == RdataType.SOA or k[2] == RdataType.SOA]
    added = [_rrset(name, RdataType.A, ["192.0.2.9"], 300), _sig(name, RdataType.A, rng),
             _nsec3(digest, rng)[1], _nsec3(neighbour, rng)[1],
             _rrset(_name("@"), RdataType.SOA, [SOA.format(serial=2, minimum=300)], 300),
             _sig(_name("@"), RdataType.SOA, rng)]
    new = old.patched([before, *soa], added)
    assert new.serial == 2 and persist.bisect_right(new.nsec3_hashes, digest) > 0
    for field in ("by_key", "kind_by_key", "nsec3_nodes"):
        a, b = getattr(old, field), getattr(new, field)
        assert isinstance(b, persist.ShardedMap) and isinstance(a, persist.ShardedMap), field
        assert b.shard_count - b.shared_shards(a) <= 3, field
        assert len(b) == len(a) + 1 and set(b) == set(a) | {
            name.to_wire() if field != "nsec3_nodes" else digest}, field
    hashes, was = new.nsec3_hashes, old.nsec3_hashes
    assert isinstance(hashes, persist.Chunks) and isinstance(was, persist.Chunks)
    assert hashes.chunk_count - hashes.shared_chunks(was) <= 2  # one, or the two it split in
    assert was.chunk_count - hashes.shared_chunks(was) == 1
    assert list(hashes) == sorted([*was, digest])
    assert structures(new) == structures(ZoneIndex.from_served(ORIGIN, [
        s for k, s in zone.items() if s is not before and s not in soa] + added))


def test_the_serial_is_read_without_parsing_the_soa() -> None:
    """`ZoneIndex.serial` (asked by every worker for every update it applies) reads the
    serial from the SOA's wire; its rdata stays unparsed until something needs it."""
    rng = random.Random(5)
    zone = _big(50, rng)
    new = ZoneIndex.from_served(ORIGIN, zone.values()).patched(
        [s for k, s in zone.items() if k[1] == RdataType.SOA],
        [_rrset(_name("@"), RdataType.SOA, [SOA.format(serial=4294967295, minimum=300)], 300)])
    soa = new.soa
    assert isinstance(soa, ServedRRset)
    assert new.serial == 4294967295
    with pytest.raises(AttributeError):
        _ITEMS.__get__(soa)  # not parsed
    assert new.serial == soa[0].serial  # type: ignore[attr-defined]
