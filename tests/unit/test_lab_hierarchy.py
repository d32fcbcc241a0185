"""The lab's pure plan: zones and addresses, zone texts, fingerprints, the re-sign rule,
trust-anchor and resolver-config texts (no sockets, no files, no clock)."""

from __future__ import annotations

import ipaddress
import re

import dns.name
import dns.rdataset
import dns.rdatatype
import dns.zone
import pytest

from sigchain.core.dnssec import algorithms, ds, keyfile
from sigchain.core.lab import hierarchy
from sigchain.core.lab.hierarchy import Denial, LabPaths, SigTimes
from sigchain.errors import InputError
from sigchain.model.keys import KeyRole

N = dns.name.from_text
IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
DAY = 86400


def dnskey(role: KeyRole = KeyRole.KSK):  # type: ignore[no-untyped-def]
    alg = algorithms.get(13)
    return keyfile.make_dnskey(alg, algorithms.generate(alg), role.flags)


def parsed(z: hierarchy.LabZone, child_ds: dict | None = None) -> dns.zone.Zone:
    text = hierarchy.zone_text(z, 2026112901, child_ds or {})
    return dns.zone.from_text(text, origin=z.name, relativize=False, check_origin=True)


def rrset_text(zone: dns.zone.Zone, name: str, rdtype: str) -> list[str]:
    rds = zone.get_rdataset(N(name), rdtype)
    return sorted(rd.to_text() for rd in rds) if rds else []


def test_the_hierarchy_the_issue_asks_for() -> None:
    by_name = {z.name.to_text(): z for z in hierarchy.ZONES}
    assert by_name["."].denial is Denial.NSEC and by_name["."].parent is None
    assert by_name["test."].parent == dns.name.root
    assert by_name["example.test."].denial is Denial.NSEC3
    assert by_name["nsec.test."].denial is Denial.NSEC
    assert by_name["insecure.test."].denial is Denial.UNSIGNED
    assert by_name["optout.test."].denial is Denial.NSEC3_OPTOUT
    assert [c.name for c in hierarchy.children(by_name["optout.test."])] == [N("unsigned.optout.test.")]
    assert not hierarchy.zone("unsigned.optout.test.").signed
    assert by_name["dnssec-failed.test."].broken_ds and by_name["dnssec-failed.test."].signed
    for z in hierarchy.ZONES[1:]:
        assert z.parent is not None and z.name.parent() == z.parent
    order = [z.name for z in hierarchy.bottom_up()]
    for z in hierarchy.ZONES:  # children before parents
        if z.parent is not None:
            assert order.index(z.name) < order.index(z.parent)


def test_addresses_are_distinct_loopback_and_in_the_lab_range() -> None:
    servers = hierarchy.server_addresses()
    assert len(set(servers)) == len(servers) == len(hierarchy.ZONES)
    everything = servers + list(hierarchy.RESOLVERS.values())
    assert len(set(everything)) == len(everything)
    for a in everything:
        assert ipaddress.ip_address(a) in hierarchy.LAB_NET and ipaddress.ip_address(a).is_loopback
    assert hierarchy.RESOLVERS == {"unbound": "127.53.1.1", "named": "127.53.1.2"}


@pytest.mark.parametrize("z", [z for z in hierarchy.ZONES if z.data], ids=lambda z: z.stem)
def test_each_zone_has_the_usual_records(z: hierarchy.LabZone) -> None:
    zone = parsed(z)
    o = z.name.to_text()
    a = hierarchy.record_addresses(z)
    assert rrset_text(zone, f"www.{o}", "A") == [a["www"]]
    assert rrset_text(zone, f"www.{o}", "AAAA") == [f"::ffff:{a['www']}"]
    assert rrset_text(zone, f"mail.{o}", "A") == [a["mail"]]
    assert rrset_text(zone, o, "MX") == [f"10 mail.{o}"]
    assert len(rrset_text(zone, o, "TXT")) == 1
    assert rrset_text(zone, f"web.{o}", "CNAME") == [f"www.{o}"]
    assert rrset_text(zone, f"*.wild.{o}", "A") == [a["wild"]]
    assert rrset_text(zone, f"*.wild.{o}", "TXT") == [f'"wildcard in {o}"']
    assert rrset_text(zone, o, "NS") == [f"ns1.{o}"]
    assert rrset_text(zone, f"ns1.{o}", "A") == [z.address]
    assert zone.get_soa().serial == 2026112901


def test_parents_delegate_with_glue_and_the_ds_given() -> None:
    key = dnskey()
    ex = ds.make_ds(N("example.test."), key, 2)
    tld = parsed(hierarchy.zone("test."), {N("example.test."): [ex]})
    assert rrset_text(tld, "example.test.", "NS") == ["ns1.example.test."]
    assert rrset_text(tld, "ns1.example.test.", "A") == ["127.53.0.3"]
    assert rrset_text(tld, "example.test.", "DS") == [ex.to_text()]
    assert rrset_text(tld, "insecure.test.", "DS") == []  # no DS given: insecure delegation
    root = parsed(hierarchy.ROOT)
    assert rrset_text(root, ".", "NS") == ["a.root-servers.lab."]
    assert rrset_text(root, "a.root-servers.lab.", "A") == ["127.53.0.1"]
    assert rrset_text(root, "test.", "NS") == ["ns1.test."]
    assert rrset_text(root, "ns1.test.", "A") == ["127.53.0.2"]
    assert rrset_text(root, "www.", "A") == []


def test_fingerprint_follows_text_keys_and_denial_not_the_serial() -> None:
    z = hierarchy.zone("example.test.")
    k1, k2 = dnskey(), dnskey(KeyRole.ZSK)
    text = hierarchy.zone_text(z, 0, {})
    fp = hierarchy.fingerprint(text, [k1, k2], z.denial)
    assert fp == hierarchy.fingerprint(hierarchy.zone_text(z, 0, {}), [k2, k1], z.denial)
    assert fp != hierarchy.fingerprint(text, [k1], z.denial)
    assert fp != hierarchy.fingerprint(text, [k1, k2], Denial.NSEC)
    assert fp != hierarchy.fingerprint(text + "extra 300 IN A 127.53.9.9\n", [k1, k2], z.denial)
    assert hierarchy.zone_text(z, 1, {}) != hierarchy.zone_text(z, 2, {})


def test_resign_once_half_the_validity_has_passed() -> None:
    t = SigTimes(inception=1_000_000, expiration=1_000_000 + 30 * DAY, count=10)
    assert not hierarchy.past_half_validity(t, 1_000_000)
    assert not hierarchy.past_half_validity(t, 1_000_000 + 15 * DAY - 1)
    assert hierarchy.past_half_validity(t, 1_000_000 + 15 * DAY)
    assert hierarchy.past_half_validity(t, 1_000_000 + 40 * DAY)


def test_signature_times_takes_latest_inception_and_earliest_expiry() -> None:
    def sig(inc: int, exp: int) -> str:
        return f"A 13 2 300 {exp} {inc} 1234 example.test. AAAA"

    nodes = {
        N("www.example.test."): [
            dns.rdataset.from_text("IN", "A", 300, "127.53.2.3"),
            dns.rdataset.from_text("IN", "RRSIG", 300, sig(20261101000000, 20261201000000)),
        ],
        N("mail.example.test."): [
            dns.rdataset.from_text("IN", "RRSIG", 300, sig(20261102000000, 20261130000000)),
        ],
    }
    t = hierarchy.signature_times(nodes)
    assert t is not None and t.count == 2
    assert t.inception == 1793577600  # 2026-11-02
    assert t.expiration == 1795996800  # 2026-11-30
    assert hierarchy.signature_times({N("x."): [dns.rdataset.from_text("IN", "A", 300, "127.0.0.1")]}) is None


def test_anchor_texts() -> None:
    key = dnskey()
    anchors = hierarchy.anchor_ds([key])
    d = anchors[0]
    digest = d.digest.hex().upper()
    assert f". 300 IN DS {d.key_tag} 13 2 {digest}" in hierarchy.anchor_ds_text(anchors).splitlines()
    conf = hierarchy.anchor_conf_text(anchors)
    assert f'\t. static-ds {d.key_tag} 13 2 "{digest}";\n' in conf
    assert conf.rstrip().endswith("};") and "trust-anchors {" in conf
    assert ds.ds_matches(dns.name.root, d, key)
    assert not ds.ds_matches(dns.name.root, d, dnskey())
    assert not ds.ds_matches(N("test."), d, key)


def test_resolver_configs_carry_the_peer_quirks_and_only_loopback() -> None:
    paths = LabPaths("/srv/lab")
    anchors = hierarchy.anchor_ds([dnskey()])
    unbound = hierarchy.unbound_conf(paths)
    named = hierarchy.named_conf(paths, anchors)
    hints = hierarchy.root_hints_text()
    for needle in ('username: ""', 'chroot: ""', 'pidfile: "/srv/lab/run/unbound.pid"',
                   "do-not-query-localhost: no", 'local-zone: "test." nodefault',
                   'root-hints: "/srv/lab/root.hints"', 'trust-anchor-file: "/srv/lab/anchor.ds"',
                   'control-interface: "/srv/lab/run/unbound.ctl"', "interface: 127.53.1.1",
                   "do-ip6: no"):
        assert f"\t{needle}\n" in unbound, needle
    for needle in ('directory "/srv/lab";', 'pid-file "/srv/lab/run/named.pid";',
                   "listen-on port 53 { 127.53.1.2; };", "listen-on-v6 { none; };",
                   "recursion yes;", "dnssec-validation yes;", 'zone "." {', "type hint;",
                   'file "/srv/lab/root.hints";', "trust-anchors {"):
        assert needle in named, needle
    for text in (unbound, named, hints):
        found = ip_literals(text)
        assert found and all(ipaddress.ip_address(a).is_loopback for a in found), found
    assert ip_literals(hints) == ["127.53.0.1"]
    text = hierarchy.zone_text(hierarchy.zone("example.test."), 1, {})
    assert set(ip_literals(text)) == {"127.53.0.3", "127.53.2.3", "127.53.3.3", "127.53.4.3"}
    assert ip_literals("a ::1 b") is None and ip_literals("x 10.0.0.300 y") == []


def ip_literals(text: str) -> list[str] | None:
    """Every IPv4 literal in a text (also in ::ffff: form); None if it has another IPv6 one."""
    if "::" in re.sub(r"::ffff:(?=\d)", "", text):
        return None
    return [a for a in IPV4.findall(text) if all(int(o) < 256 for o in a.split("."))]


@pytest.mark.parametrize("bad", ["lab", "/tmp/my lab", '/tmp/x"y', "/tmp/a;b", "/tmp/a\nb"])
def test_lab_directory_must_be_safe_in_configs(bad: str) -> None:
    with pytest.raises(InputError):
        LabPaths(bad)


def test_paths() -> None:
    p = LabPaths("/srv/lab/")
    root, ex = hierarchy.ROOT, hierarchy.zone("example.test.")
    assert p.served(root) == "/srv/lab/zones/root.signed"
    assert p.unsigned(ex) == "/srv/lab/zones/example.test.zone"
    assert p.served(hierarchy.zone("insecure.test.")) == "/srv/lab/zones/insecure.test.zone"
    assert p.keys(ex) == "/srv/lab/keys/example.test"
    assert hierarchy.serve_args(ex, p) == [
        "serve", "--listen", "127.53.0.3#53", "--zone", "example.test.=/srv/lab/zones/example.test.signed"]
