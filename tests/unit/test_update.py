"""RFC 2136 dynamic update, the pure part: each rule of §3 with the rcode it gives, and the
change set an accepted update makes (the zone itself never written)."""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdataset
import dns.update
import pytest

from sigchain.core.update.changes import DictZone
from sigchain.core.update.process import UpdatePolicy, UpdateResult, parse, process
from sigchain.core.zone.records import from_rdatasets, key_of

N = dns.name.from_text
ORIGIN = N("example.test.")
R = dns.rcode


def _zone() -> DictZone:
    def rds(t: str, *texts: str) -> dns.rdataset.Rdataset:
        return dns.rdataset.from_text("IN", t, 300, *texts)

    return DictZone(key_of(ORIGIN), from_rdatasets({
        ORIGIN: [rds("SOA", "ns.example.test. h.example.test. 10 2 3 4 60"),
                 rds("NS", "ns.example.test."), rds("DNSKEY", "257 3 13 " + "A" * 88)],
        N("ns.example.test."): [rds("A", "192.0.2.1")],
        N("www.example.test."): [rds("A", "192.0.2.2", "192.0.2.3"), rds("TXT", '"hello"')],
        N("alias.example.test."): [rds("CNAME", "www.example.test.")],
    }))


def _run(u: dns.update.UpdateMessage, zone: DictZone | None = None, allowed: bool = True,
         policy: UpdatePolicy | None = None) -> UpdateResult:
    msg = parse(u.to_wire())  # through the wire, as a server gets it
    assert msg is not None
    return process(msg, zone or _zone(), ORIGIN, allowed, policy or UpdatePolicy())


def _texts(zone: DictZone, name: str, t: str) -> set[str] | None:
    r = zone.rrset(key_of(N(name)), dns.rdatatype.from_text(t))
    return None if r is None else set(r.texts)


def _applied(u: dns.update.UpdateMessage) -> DictZone:
    zone = _zone()
    res = _run(u, zone)
    assert res.rcode == R.NOERROR, res.reason
    zone.apply(res.changes)
    return zone


def test_zone_section() -> None:
    assert parse(b"\x00\x01\x28\x00" + b"\x00" * 8) is not None  # opcode UPDATE, no zone
    msg = parse(b"\x00\x01\x28\x00" + b"\x00" * 8)
    assert msg is not None and process(msg, _zone(), ORIGIN, True).rcode == R.FORMERR
    assert parse(b"\x00\x01\x28") is None  # truncated: FORMERR before any processing
    other = dns.update.UpdateMessage("other.test.")
    other.add("a.other.test.", 300, "A", "192.0.2.9")
    assert _run(other).rcode == R.NOTAUTH


def test_refused_when_not_allowed_before_prerequisites_are_looked_at() -> None:
    u = dns.update.UpdateMessage(ORIGIN)
    u.present("nothere.example.test.")  # would be NXDOMAIN: the stranger must not learn it
    u.add("new.example.test.", 300, "A", "192.0.2.9")
    res = _run(u, allowed=False)
    assert res.rcode == R.REFUSED and res.changes.empty


@pytest.mark.parametrize("build, rcode", [
    (lambda u: u.present("www.example.test."), R.NOERROR),
    (lambda u: u.present("nothere.example.test."), R.NXDOMAIN),
    (lambda u: u.present("www.example.test.", "TXT"), R.NOERROR),
    (lambda u: u.present("www.example.test.", "MX"), R.NXRRSET),
    (lambda u: u.absent("nothere.example.test."), R.NOERROR),
    (lambda u: u.absent("www.example.test."), R.YXDOMAIN),
    (lambda u: u.absent("www.example.test.", "MX"), R.NOERROR),
    (lambda u: u.absent("www.example.test.", "A"), R.YXRRSET),
    # value-dependent: the whole RRset, exactly (TTL aside), in any order
    (lambda u: u.present("www.example.test.", "A", "192.0.2.3", "192.0.2.2"), R.NOERROR),
    (lambda u: u.present("www.example.test.", "A", "192.0.2.2"), R.NXRRSET),
    (lambda u: u.present("www.example.test.", "A", "192.0.2.2", "192.0.2.3", "192.0.2.4"), R.NXRRSET),
    (lambda u: u.present("nothere.example.test.", "A", "192.0.2.2"), R.NXRRSET),
    (lambda u: u.present("www.other.test."), R.NOTZONE),
])
def test_prerequisites(build, rcode: int) -> None:  # type: ignore[no-untyped-def]
    u = dns.update.UpdateMessage(ORIGIN)
    build(u)
    u.add("new.example.test.", 300, "A", "192.0.2.9")
    res = _run(u)
    assert res.rcode == rcode, res.reason
    assert res.changes.empty == (rcode != R.NOERROR)


def test_prerequisite_with_a_ttl_is_formerr() -> None:
    u = dns.update.UpdateMessage(ORIGIN)
    u.present("www.example.test.", "TXT")
    u.prerequisite[0].ttl = 60  # dnspython writes 0 for an empty RRset: checked unparsed
    assert process(u, _zone(), ORIGIN, True).rcode == R.FORMERR


@pytest.mark.parametrize("build, rcode", [
    (lambda u: u.add("x.other.test.", 300, "A", "192.0.2.9"), R.NOTZONE),
    (lambda u: u.add("x.example.test.", 300, "NSEC", "y.example.test. A"), R.REFUSED),
    (lambda u: u.add("x.example.test.", 300, "RRSIG",
                     "A 13 3 300 20300101000000 20200101000000 1 example.test. AAAA"), R.REFUSED),
    (lambda u: u.delete("example.test.", "NSEC3PARAM"), R.REFUSED),
    (lambda u: u.add("example.test.", 300, "DNSKEY", "256 3 13 " + "B" * 88), R.REFUSED),
    (lambda u: u.delete("example.test.", "CDS"), R.REFUSED),
])
def test_update_section_prescan(build, rcode: int) -> None:  # type: ignore[no-untyped-def]
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("new.example.test.", 300, "A", "192.0.2.9")  # the good part is not applied either
    build(u)
    res = _run(u)
    assert res.rcode == rcode and res.changes.empty, res.reason


def test_bad_class_or_ttl_in_the_update_section_is_formerr() -> None:
    u = dns.update.UpdateMessage(ORIGIN)
    u.delete("www.example.test.", "A", "192.0.2.2")
    u.update[0].ttl = 5  # a class NONE delete must have TTL 0
    assert process(u, _zone(), ORIGIN, True).rcode == R.FORMERR
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("www.example.test.", 300, "A", "192.0.2.2")
    u.update[0].rdclass = dns.rdataclass.CH  # neither the zone's class nor ANY/NONE
    assert process(u, _zone(), ORIGIN, True).rcode == R.FORMERR


def test_client_keys_allowed_by_policy() -> None:
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("example.test.", 300, "DNSKEY", "256 3 13 " + "B" * 88)
    assert _run(u, policy=UpdatePolicy(client_keys=True)).rcode == R.NOERROR


def test_adds_and_deletes() -> None:
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("www.example.test.", 600, "A", "192.0.2.4")
    u.delete("www.example.test.", "A", "192.0.2.2")
    u.delete("www.example.test.", "TXT")
    u.add("new.example.test.", 300, "AAAA", "2001:db8::1")
    zone = _applied(u)
    assert _texts(zone, "www.example.test.", "A") == {"192.0.2.3", "192.0.2.4"}
    assert zone.rrset(key_of(N("www.example.test.")), 1).ttl == 600  # the RRset takes the new TTL
    assert _texts(zone, "www.example.test.", "TXT") is None
    assert _texts(zone, "new.example.test.", "AAAA") == {"2001:db8::1"}


def test_change_set_names_old_and_new_rrsets_and_nothing_else() -> None:
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("www.example.test.", 300, "A", "192.0.2.2")  # already there, same TTL: no change
    u.add("new.example.test.", 300, "A", "192.0.2.9")
    u.delete("new.example.test.", "A", "192.0.2.9")  # added then deleted in one update
    res = _run(u)
    assert res.rcode == R.NOERROR and res.changes.empty
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("www.example.test.", 300, "A", "192.0.2.7")
    res = _run(u)
    assert [r.texts for r in res.changes.removed] == [("192.0.2.2", "192.0.2.3")]
    assert [r.texts for r in res.changes.added] == [("192.0.2.2", "192.0.2.3", "192.0.2.7")]


def test_delete_all_at_a_name_and_at_the_apex() -> None:
    u = dns.update.UpdateMessage(ORIGIN)
    u.delete("www.example.test.")
    u.delete("example.test.")  # apex: SOA, NS (and the policy's DNSKEY) stay
    zone = _applied(u)
    assert not zone.types(key_of(N("www.example.test.")))
    assert set(zone.types(key_of(ORIGIN))) == {6, 2, 48}


def test_apex_soa_and_ns_rules() -> None:
    u = dns.update.UpdateMessage(ORIGIN)
    u.delete("example.test.", "NS", "ns.example.test.")  # the last NS: ignored
    u.delete("example.test.", "NS")  # the apex NS RRset by type: ignored
    u.delete("example.test.", "SOA")  # ignored
    u.add("example.test.", 300, "SOA", "ns.example.test. h.example.test. 9 2 3 4 60")  # older
    u.add("x.example.test.", 300, "SOA", "ns.example.test. h.example.test. 99 2 3 4 60")  # not apex
    res = _run(u)
    assert res.rcode == R.NOERROR and res.changes.empty
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("example.test.", 300, "SOA", "ns.example.test. h.example.test. 11 2 3 4 60")
    u.add("example.test.", 300, "NS", "ns2.example.test.")
    u.delete("example.test.", "NS", "ns.example.test.")  # no longer the last one
    zone = _applied(u)
    assert _texts(zone, "example.test.", "SOA") == {"ns.example.test. h.example.test. 11 2 3 4 60"}
    assert _texts(zone, "example.test.", "NS") == {"ns2.example.test."}


def test_cname_rules() -> None:
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("www.example.test.", 300, "CNAME", "elsewhere.test.")  # www has data: ignored
    u.add("alias.example.test.", 300, "A", "192.0.2.9")  # alias is a CNAME: ignored
    res = _run(u)
    assert res.rcode == R.NOERROR and res.changes.empty
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("alias.example.test.", 300, "CNAME", "elsewhere.test.")  # replaces the CNAME
    zone = _applied(u)
    assert _texts(zone, "alias.example.test.", "CNAME") == {"elsewhere.test."}


def test_ds_only_at_a_delegation_and_other_adds_bind_ignores() -> None:
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("www.example.test.", 300, "DS", "1 13 2 " + "ab" * 32)  # no NS there: dropped
    u.add("example.test.", 300, "DS", "1 13 2 " + "ab" * 32)  # at the apex: ignored
    u.add("*.wild.example.test.", 300, "NS", "ns.elsewhere.test.")  # a wildcard cut: ignored
    u.add("*.wild.example.test.", 300, "DNAME", "elsewhere.test.")
    u.add("x.example.test.", 300, "MD", r"\# 1 00")  # obsolete: ignored
    res = _run(u)
    assert res.rcode == R.NOERROR and res.changes.empty, res.changes
    u = dns.update.UpdateMessage(ORIGIN)
    u.add("sub.example.test.", 300, "NS", "ns.elsewhere.test.")
    u.add("sub.example.test.", 300, "DS", "1 13 2 " + "ab" * 32)
    zone = _applied(u)
    assert _texts(zone, "sub.example.test.", "DS") is not None
    u = dns.update.UpdateMessage(ORIGIN)
    u.delete("sub.example.test.", "NS")  # the DS goes with it (RFC 3658 §2.2)
    res = _run(u, zone)
    assert res.rcode == R.NOERROR
    zone.apply(res.changes)
    assert not zone.types(key_of(N("sub.example.test.")))


def test_a_tsig_signed_update_parses_and_the_caller_checks_the_key() -> None:
    import dns.tsigkeyring

    keyring = dns.tsigkeyring.from_text({"upd.": "c2VjcmV0c2VjcmV0c2VjcmV0"})
    u = dns.update.UpdateMessage(ORIGIN, keyring=keyring)
    u.add("new.example.test.", 300, "A", "192.0.2.9")
    msg = parse(u.to_wire())
    assert msg is not None and msg.had_tsig and msg.keyname == dns.name.from_text("upd.")
    assert process(msg, _zone(), ORIGIN, True).rcode == R.NOERROR
