"""Incremental signing: after every change of a random sequence of RFC 2136 updates, the zone
kept incrementally has exactly the records a full re-sign of its data gives (signature bytes
aside: the same RRsets carry RRSIGs), its IXFR difference turns the old version into the new
one, and its signatures verify."""

from __future__ import annotations

import random
from dataclasses import replace

import dns.name
import dns.rcode
import dns.rdataset
import dns.update
import pytest
from dns.rdatatype import RdataType

from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.sign import signer
from sigchain.core.sign.batches import BY_ZSK, UNSIGNED
from sigchain.core.sign.incremental import Diff, SignedZone
from sigchain.core.sign.render import denial_units
from sigchain.core.update.changes import ChangeSet
from sigchain.core.update.process import parse, process
from sigchain.core.verify.verifier import verify_records
from sigchain.core.zone.nsec3hash import Nsec3Params
from sigchain.core.zone.records import RRsetRec, from_rdatasets, key_of
from sigchain.core.zone.wire import WireRRset
from sigchain.errors import InputError
from sigchain.findings import Severity
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming
from tests.unit.lab import make_key

N = dns.name.from_text
NOW = 1_800_000_000
ORIGIN = N("example.test.")
WINDOW = SigWindow(NOW - 3600, 30 * 86400, 86400, b"seed")


def make_keys(alg: int = 15) -> list[KeyPair]:
    return [make_key(ORIGIN, role, alg) for role in (KeyRole.KSK, KeyRole.ZSK)]


def rds(t: str, *texts: str, ttl: int = 300) -> dns.rdataset.Rdataset:
    return dns.rdataset.from_text("IN", t, ttl, *texts)


def make_zone(n: int, rng: random.Random) -> list[RRsetRec]:
    """`n` names: plain hosts, hosts under empty non-terminals, delegations (some secure,
    with glue), wildcards, names with several types."""
    z: dict[dns.name.Name, list[dns.rdataset.Rdataset]] = {
        ORIGIN: [rds("SOA", "ns.example.test. h.example.test. 1 7200 3600 1209600 60"),
                 rds("NS", "ns.example.test.")],
        N("ns.example.test."): [rds("A", "192.0.2.1")],
    }
    for i in range(n):
        pick = rng.random()
        if pick < 0.6:
            z[N(f"h{i}.example.test.")] = [rds("A", f"10.0.{i // 250}.{i % 250}")]
        elif pick < 0.75:
            z[N(f"h{i}.d{i % 9}.e{i % 3}.example.test.")] = [rds("AAAA", f"2001:db8::{i:x}")]
        elif pick < 0.85:
            sub = f"sub{i}.example.test."
            z[N(sub)] = [rds("NS", f"ns.{sub}")]
            z[N(f"ns.{sub}")] = [rds("A", "192.0.2.53")]
            if i % 2:
                z[N(sub)].append(rds("DS", f"{i} 13 2 " + f"{i:064x}"))
        elif pick < 0.9:
            z[N(f"*.w{i}.example.test.")] = [rds("TXT", f'"w{i}"')]
        else:
            z[N(f"m{i}.example.test.")] = [rds("A", "192.0.2.7"), rds("TXT", '"m"'),
                                           rds("MX", f"10 h{i}.example.test.")]
    return from_rdatasets(z)


def expected(zone: SignedZone, keys: list[KeyPair], opts: signer.SignOptions) -> tuple[set, set]:  # type: ignore[type-arg]
    """What a full re-sign of the zone's current data gives: its RRsets (owner, type, TTL,
    rdata) and which (owner, type) carry RRSIGs."""
    data = [r for node in zone.data.values() for r in node.values()]
    prep = signer.prepare(data, ORIGIN, keys, opts, NOW)
    rrsets, signed = set(), set()
    for b in prep.batches(1 << 30):
        for r, role in zip(b.rrsets, b.roles, strict=True):
            rrsets.add((r.key, r.rdtype, r.ttl, r.wires))
            if role != UNSIGNED:
                signed.add((r.key, r.rdtype))
        denial = denial_units(b.denial, prep.ctx.denial_ttl, opts.nsec3, prep.ctx.signer_wire,
                              prep.ctx.signer_text, BY_ZSK)
        for r, _ in denial:
            rrsets.add((r.key, r.rdtype, r.ttl, r.wires))
            signed.add((r.key, r.rdtype))
    return rrsets, signed


def actual(zone: SignedZone) -> tuple[set, set]:  # type: ignore[type-arg]
    rrsets = {(r.key, r.rdtype, r.ttl, r.wires) for r in zone.rrsets() if r.rdtype != RdataType.RRSIG}
    signed = {(k, t) for k, node in zone.sigs.items() for t in node}
    return rrsets, signed


def snapshot(zone: SignedZone) -> dict[tuple, RRsetRec]:  # type: ignore[type-arg]
    return {_ident(r): r for r in zone.rrsets()}


def _ident(r: RRsetRec) -> tuple:  # type: ignore[type-arg]
    covered = int.from_bytes(r.wires[0][:2], "big") if r.rdtype == RdataType.RRSIG else 0
    return r.key, r.rdtype, covered


def flat(rrsets: dict[tuple, RRsetRec]) -> set[tuple]:  # type: ignore[type-arg]
    return {(r.key, r.ttl, r.rdtype, w) for r in rrsets.values() for w in r.wires}


def records(rrsets: dict[tuple, RRsetRec]) -> dict[tuple, tuple]:  # type: ignore[type-arg]
    """TTL and rdata of each RRset (a zone read back spells its text its own way)."""
    return {k: (r.ttl, r.wires) for k, r in rrsets.items()}


def apply_diff(before: dict[tuple, RRsetRec], diff: Diff) -> dict[tuple, RRsetRec]:  # type: ignore[type-arg]
    after = dict(before)
    for r in diff.removed:
        old = after.pop(_ident(r))
        assert records({0: old}) == records({0: r}), "the difference removes what is not there"
    for r in diff.added:
        assert _ident(r) not in after, "the difference adds an RRset twice"
        after[_ident(r)] = r
    return after


def verify_clean(zone: SignedZone, at: int = NOW) -> None:
    wire = [WireRRset(r.key, r.owner, r.rdtype, r.ttl, r.wires) for r in zone.rrsets()]
    report = verify_records(wire, ORIGIN, at)
    errors = [f.message for f in report.findings if f.severity is Severity.ERROR]
    assert not errors, errors[:5]


def random_update(zone: SignedZone, rng: random.Random, step: int) -> dns.update.UpdateMessage:
    """One update of a random kind: new names (deep ones make empty non-terminals), data
    added to or deleted from existing names, whole names deleted, delegations made (hiding
    what is below them, empty non-terminals included) and unmade."""
    u = dns.update.UpdateMessage(ORIGIN)
    names = sorted(k for k in zone.data if len(k) > 2)
    name = rng.choice(names)
    text = dns.name.Name(tuple(reversed(name)) + (b"",)).to_text()
    kind = rng.randrange(8)
    if kind == 0:
        depth = rng.randrange(1, 4)
        labels = ".".join(f"n{step}x{rng.randrange(5)}" for _ in range(depth))
        u.add(f"{labels}.example.test.", 300, *rng.choice([("A", "10.9.9.9"), ("TXT", '"t"')]))
    elif kind == 1:
        u.add(text, 300, "TXT", f'"step {step}"')
    elif kind == 2:
        u.delete(text)
    elif kind == 3 and RdataType.NS in zone.data[name]:
        u.delete(text, "DS")
        u.delete(text, "NS")
    elif kind == 4:
        u.add(text, 300, "NS", "ns.elsewhere.test.")  # hides the names below it
        if rng.random() < 0.5:
            u.add(text, 300, "DS", f"{step} 13 2 " + f"{step:064x}")
    elif kind == 5:
        parent = dns.name.Name(tuple(reversed(name[:-1])) + (b"",)).to_text()
        u.add(f"new{step}.{parent}", 300, "A", "10.1.2.3")
    elif kind == 6:
        u.delete(text, "A")
    else:  # a cut above existing names (often an empty non-terminal): they go out of the zone
        above = dns.name.Name(tuple(reversed(name[:max(3, len(name) - 2)])) + (b"",)).to_text()
        u.add(above, 300, "NS", "ns.elsewhere.test.")
    return u


@pytest.mark.parametrize("nsec3", [None, Nsec3Params(), Nsec3Params(1, b"\xca\xfe"),
                                   Nsec3Params(opt_out=True)], ids=["nsec", "nsec3", "salt", "opt-out"])
def test_random_updates_match_a_full_resign(nsec3: Nsec3Params | None) -> None:
    rng = random.Random(15 + (nsec3.iterations if nsec3 else 7))
    keys = make_keys()
    opts = signer.SignOptions(WINDOW, nsec3, serial="increment")
    zone, _ = SignedZone.sign(make_zone(1200, rng), ORIGIN, keys, opts, NOW)
    keep = signer.SignOptions(WINDOW, nsec3)
    assert actual(zone) == expected(zone, keys, keep)
    serial = zone.serial
    after = snapshot(zone)
    for step in range(30):
        res = process(parse(random_update(zone, rng, step).to_wire()), zone, ORIGIN, True)  # type: ignore[arg-type]
        assert res.rcode == dns.rcode.NOERROR, res.reason
        before = after
        diff = zone.apply(res.changes, SigWindow(NOW + step, 30 * 86400, 86400, b"s"), NOW + step)
        after = snapshot(zone)
        assert apply_diff(before, diff) == after
        gone, came = diff.records()  # record by record: the old zone minus gone plus came
        assert flat(before) - gone | came == flat(after) and not gone & came
        if res.changes.empty:
            assert diff.empty and zone.serial == serial
            continue
        assert diff.removed[0].rdtype == diff.added[0].rdtype == RdataType.SOA
        assert (diff.old_serial, diff.new_serial) == (serial, serial + 1) == (serial, zone.serial)
        serial = zone.serial
        assert actual(zone) == expected(zone, keys, keep), f"step {step}"
    verify_clean(zone, NOW + 100)


def test_a_change_touches_only_its_neighbourhood() -> None:
    rng = random.Random(1)
    keys = make_keys()
    opts = signer.SignOptions(WINDOW, None, serial="increment")
    zone, _ = SignedZone.sign(make_zone(300, rng), ORIGIN, keys, opts, NOW)
    new = from_rdatasets({N("a.b.h5.example.test."): [rds("A", "10.5.5.5")]})
    diff = zone.apply(ChangeSet((), tuple(new)), WINDOW, NOW)
    # Added: SOA + RRSIG, the A + RRSIG, its NSEC + RRSIG, the ENT b.h5 has no NSEC, the
    # predecessor's NSEC (next pointer) + RRSIG. Removed: the old SOA, its RRSIG, the old
    # predecessor NSEC and its RRSIG.
    assert sorted(r.rdtype for r in diff.added) == sorted([6, 46, 1, 46, 47, 46, 47, 46])
    assert sorted(r.rdtype for r in diff.removed) == sorted([6, 46, 47, 46])
    verify_clean(zone, NOW + 100)


def test_refused_changes_change_nothing() -> None:
    rng = random.Random(2)
    keys = make_keys()
    zone, _ = SignedZone.sign(make_zone(50, rng), ORIGIN, keys,
                              signer.SignOptions(WINDOW, Nsec3Params()), NOW)
    before = snapshot(zone)
    ds = from_rdatasets({N("lonely.example.test."): [rds("DS", "1 13 2 " + "ab" * 32)]})
    with pytest.raises(InputError, match="DS record without NS"):
        zone.apply(ChangeSet((), tuple(ds)), WINDOW, NOW)
    out = from_rdatasets({N("x.other.test."): [rds("A", "10.0.0.1")]})
    with pytest.raises(InputError, match="outside the zone"):
        zone.apply(ChangeSet((), tuple(ds) + tuple(out)), WINDOW, NOW)
    soa = zone.rrset(key_of(ORIGIN), RdataType.SOA)
    assert soa is not None
    with pytest.raises(InputError, match="no SOA"):
        zone.apply(ChangeSet((soa,), ()), WINDOW, NOW)
    assert snapshot(zone) == before


def test_soa_minimum_change_redoes_the_denial_ttl() -> None:
    keys = make_keys()
    zone, _ = SignedZone.sign(make_zone(40, random.Random(3)), ORIGIN, keys,
                              signer.SignOptions(WINDOW, None), NOW)
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("example.test.", 300, "SOA", "ns.example.test. h.example.test. 5 7200 3600 1209600 30")
    res = process(parse(u.to_wire()), zone, ORIGIN, True)  # type: ignore[arg-type]
    zone.apply(res.changes, WINDOW, NOW)
    assert zone.serial == 5  # raised by the update itself: kept
    assert {r.ttl for r in zone.denial.values()} == {30}
    assert actual(zone) == expected(zone, keys, signer.SignOptions(WINDOW, None))
    verify_clean(zone, NOW + 100)


def test_delegation_bitmaps_list_only_ns_and_ds() -> None:
    """Data beside NS at a cut is the child's: dnssec-signzone's NSEC there says `NS DS RRSIG
    NSEC` and dnssec-verify rejects one listing A; the full signer and the incremental one
    agree (an update adding NS to a name with an A makes exactly that)."""
    keys = make_keys()
    z = {ORIGIN: [rds("SOA", "ns.example.test. h.example.test. 1 2 3 4 60"), rds("NS", "ns.example.test.")],
         N("ns.example.test."): [rds("A", "192.0.2.1")],
         N("sub.example.test."): [rds("A", "192.0.2.9"), rds("NS", "ns.elsewhere.test."),
                                  rds("DS", "1 13 2 " + "01" * 32)]}
    for nsec3, want in ((None, "NS DS RRSIG NSEC"), (Nsec3Params(), "NS DS RRSIG")):
        zone, _ = SignedZone.sign(from_rdatasets(z), ORIGIN, keys, signer.SignOptions(WINDOW, nsec3), NOW)
        assert actual(zone) == expected(zone, keys, signer.SignOptions(WINDOW, nsec3))
        sub = key_of(N("sub.example.test."))
        owner = zone.hashed[sub] if nsec3 else sub
        fields = zone.denial[owner].texts[0].split(maxsplit=5 if nsec3 else 1)
        assert fields[-1] == want
        verify_clean(zone, NOW + 100)


def _read_back(zone: SignedZone) -> list[RRsetRec]:
    """The zone as written and read again (what a restart finds on disk)."""
    import dns.zone

    z = dns.zone.from_text(zone.text(), ORIGIN, relativize=False, check_origin=False)
    return from_rdatasets({name: list(node.rdatasets) for name, node in z.nodes.items()})


def test_adopting_its_own_output_keeps_every_signature() -> None:
    keys = make_keys()
    opts = signer.SignOptions(WINDOW, Nsec3Params(), serial="increment")
    zone, _ = SignedZone.sign(make_zone(200, random.Random(7)), ORIGIN, keys, opts, NOW)
    again, diff, _ = SignedZone.adopt(_read_back(zone), ORIGIN, keys, opts, NOW + 60)
    assert diff.empty and again.serial == zone.serial

    assert records(snapshot(again)) == records(snapshot(zone))


def successor_zsk(keys: list[KeyPair]) -> KeyPair:
    """A new ZSK whose tag is not the old one's (signatures are matched to keys by tag)."""
    while (new := make_keys()[1]).key_tag == keys[1].key_tag:
        pass
    return new


@pytest.mark.parametrize("change", ["new-zsk", "expired", "nsec-to-nsec3"])
def test_adopting_re_signs_what_cannot_stay(change: str) -> None:
    keys = make_keys()
    opts = signer.SignOptions(WINDOW, None, serial="increment")
    zone, _ = SignedZone.sign(make_zone(200, random.Random(8)), ORIGIN, keys, opts, NOW)
    before = snapshot(zone)
    at, new_keys, new_opts = NOW + 60, keys, opts
    if change == "new-zsk":
        new_keys = [keys[0], successor_zsk(keys)]
    elif change == "expired":
        at = NOW + 30 * 86400 - 3600 - 43200  # past the jittered expirations of about half
        new_opts = signer.SignOptions(SigWindow(at - 3600, 30 * 86400, 0), None, serial="increment")
    else:
        new_opts = signer.SignOptions(WINDOW, Nsec3Params(), serial="increment")
    again, diff, _ = SignedZone.adopt(_read_back(zone), ORIGIN, new_keys, new_opts, at)
    assert not diff.empty and diff.new_serial == zone.serial + 1 == again.serial
    assert records(apply_diff(before, diff)) == records(snapshot(again))
    keep = signer.SignOptions(new_opts.window, new_opts.nsec3)
    assert actual(again) == expected(again, new_keys, keep)
    verify_clean(again, at)
    if change == "expired":  # only the ones that expired were re-signed
        resigned = {(r.key, r.wires[0][:2]) for r in diff.added if r.rdtype == RdataType.RRSIG}
        assert 1 < len(resigned) < len(list(again.expirations())) - 1


def test_rekey_follows_a_zsk_roll() -> None:
    """Pre-publication ZSK roll (RFC 6781 §4.1.1.1): the new ZSK published first changes only
    the DNSKEY RRset (and the SOA); once it signs, every ZSK signature is replaced."""
    keys = make_keys()
    opts = signer.SignOptions(WINDOW, Nsec3Params(), serial="increment")
    zone, _ = SignedZone.sign(make_zone(150, random.Random(9)), ORIGIN, keys, opts, NOW)
    new = successor_zsk(keys)
    day = 86400
    new = replace(new, timing=KeyTiming(publish=NOW, activate=NOW + 2 * day))
    old = replace(keys[1], timing=KeyTiming(activate=NOW - day, inactive=NOW + 2 * day))
    step1, _ = zone.rekey([keys[0], old, new], NOW + 60, WINDOW)
    assert sorted(r.rdtype for r in step1.added) == sorted(
        [RdataType.SOA, RdataType.DNSKEY, RdataType.RRSIG, RdataType.RRSIG])
    assert len(zone.rrset(key_of(ORIGIN), RdataType.DNSKEY).wires) == 3  # type: ignore[union-attr]
    later = NOW + 2 * day + 60
    window = SigWindow(later - 3600, 30 * day, day, b"w")
    before = snapshot(zone)
    step2, _ = zone.rekey([keys[0], old, new], later, window)
    assert records(apply_diff(before, step2)) == records(snapshot(zone))
    zsk_signed = sum(len(n) for n in zone.sigs.values()) - 1  # all but the DNSKEY RRset's
    assert sum(r.rdtype == RdataType.RRSIG for r in step2.added) == zsk_signed
    tags = {int.from_bytes(w[16:18], "big") for n in zone.sigs.values() for s in n.values()
            for w in s.wires}
    assert tags == {keys[0].key_tag, new.key_tag}
    assert actual(zone) == expected(zone, [keys[0], old, new],
                                    signer.SignOptions(window, Nsec3Params()))
    verify_clean(zone, later)


def test_opt_out_covers_an_empty_non_terminal_only_while_something_secure_is_below() -> None:
    keys = make_keys()
    opts = signer.SignOptions(WINDOW, Nsec3Params(opt_out=True))
    z = {ORIGIN: [rds("SOA", "ns.example.test. h.example.test. 1 2 3 4 60"), rds("NS", "ns.example.test.")],
         N("ns.example.test."): [rds("A", "192.0.2.1")],
         N("a.ent.example.test."): [rds("NS", "ns.elsewhere.test.")]}
    zone, _ = SignedZone.sign(from_rdatasets(z), ORIGIN, keys, opts, NOW)
    ent = key_of(N("ent.example.test."))
    assert ent not in zone.hashed  # only an insecure delegation below it
    ds = from_rdatasets({N("a.ent.example.test."): [rds("DS", "1 13 2 " + "01" * 32)]})
    before = state(zone)
    zone.revert(zone.apply(ChangeSet((), tuple(ds)), WINDOW, NOW))  # taken back: uncovered again
    assert state(zone) == before
    zone.apply(ChangeSet((), tuple(ds)), WINDOW, NOW)
    assert ent in zone.hashed and actual(zone) == expected(zone, keys, opts)
    zone.apply(ChangeSet(tuple(ds), ()), WINDOW, NOW)
    assert ent not in zone.hashed and actual(zone) == expected(zone, keys, opts)
    verify_clean(zone, NOW + 100)


@pytest.mark.parametrize("nsec3", [None, Nsec3Params()], ids=["nsec", "nsec3"])
def test_undelegating_brings_back_the_names_below_with_their_empty_non_terminals(
        nsec3: Nsec3Params | None) -> None:
    keys = make_keys()
    opts = signer.SignOptions(WINDOW, nsec3)
    z = {ORIGIN: [rds("SOA", "ns.example.test. h.example.test. 1 2 3 4 60"), rds("NS", "ns.example.test.")],
         N("ns.example.test."): [rds("A", "192.0.2.1")],
         N("sub.example.test."): [rds("NS", "ns.x.sub.example.test.")],
         N("ns.x.sub.example.test."): [rds("A", "192.0.2.2")]}  # glue, below x.sub
    zone, _ = SignedZone.sign(from_rdatasets(z), ORIGIN, keys, opts, NOW)
    ns = from_rdatasets({N("sub.example.test."): [rds("NS", "ns.x.sub.example.test.")]})
    zone.apply(ChangeSet(tuple(ns), ()), WINDOW, NOW)  # sub is no cut: x.sub becomes an ENT
    assert actual(zone) == expected(zone, keys, opts)
    zone.apply(ChangeSet((), tuple(ns)), WINDOW, NOW)  # and back
    assert actual(zone) == expected(zone, keys, opts)
    verify_clean(zone, NOW + 100)


def state(zone: SignedZone) -> tuple:  # type: ignore[type-arg]
    """Everything a signed zone holds, copied."""
    return ({k: dict(v) for k, v in zone.data.items()}, {k: dict(v) for k, v in zone.sigs.items()},
            dict(zone.denial), dict(zone.kinds), list(zone.names), list(zone.chain),
            dict(zone.hashed), dict(zone.unhashed), zone.denial_ttl, zone.plan, zone.signer)


@pytest.mark.parametrize("nsec3", [None, Nsec3Params(), Nsec3Params(opt_out=True)],
                         ids=["nsec", "nsec3", "opt-out"])
def test_a_change_reverted_leaves_the_zone_exactly_as_it_was(nsec3: Nsec3Params | None) -> None:
    """A server whose record of a change fails takes the change back (`revert`): the zone is
    the one recorded and served, and the next change applies to it as if the first had
    never been made."""
    rng = random.Random(44)
    keys = make_keys()
    opts = signer.SignOptions(WINDOW, nsec3, serial="increment")
    zone, _ = SignedZone.sign(make_zone(400, rng), ORIGIN, keys, opts, NOW)
    for step in range(40):
        res = process(parse(random_update(zone, rng, step).to_wire()), zone, ORIGIN, True)  # type: ignore[arg-type]
        window = SigWindow(NOW + step, 30 * 86400, 86400, b"s")
        before = state(zone)
        diff = zone.apply(res.changes, window, NOW + step)
        assert diff.empty or state(zone) != before
        zone.revert(diff)
        assert state(zone) == before, f"step {step}"
        again = zone.apply(res.changes, window, NOW + step)  # kept this time
        assert records(apply_diff(snapshot_of(before), again)) == records(snapshot(zone))
    keep = signer.SignOptions(WINDOW, nsec3)
    assert actual(zone) == expected(zone, keys, keep)
    verify_clean(zone, NOW + 100)
    before = state(zone)
    zone.revert(zone.resign([(key_of(ORIGIN), RdataType.NS)], WINDOW, NOW + 50))
    assert state(zone) == before
    u = dns.update.UpdateMessage(ORIGIN)  # a new SOA minimum: every denial record's TTL
    u.add("example.test.", 300, "SOA", "ns.example.test. h.example.test. 5000 7200 3600 1209600 30")
    zone.revert(zone.apply(process(parse(u.to_wire()), zone, ORIGIN, True).changes,  # type: ignore[arg-type]
                           WINDOW, NOW + 55))
    assert state(zone) == before
    new = replace(successor_zsk(keys), timing=KeyTiming(activate=NOW))
    rolled, _ = zone.rekey([keys[0], replace(keys[1], timing=KeyTiming(inactive=NOW)), new],
                           NOW + 60, WINDOW)
    assert sum(r.rdtype == RdataType.RRSIG for r in rolled.added) > 100  # every ZSK signature
    zone.revert(rolled)
    assert state(zone) == before
    verify_clean(zone, NOW + 100)


def snapshot_of(st: tuple) -> dict[tuple, RRsetRec]:  # type: ignore[type-arg]
    data, sigs, denial = st[0], st[1], st[2]
    out = [r for node in (*data.values(), *sigs.values()) for r in node.values()]
    return {_ident(r): r for r in (*out, *denial.values())}
