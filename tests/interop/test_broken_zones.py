"""Broken signed zones, built when the test runs (the peers use the wall clock): each one
gives exit 1 and its own finding code from `sigchain verify`, and dnssec-verify rejects it;
and problems dnssec-verify lets pass that `sigchain verify` reports by their RFC rule."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import pytest
from dns.rdatatype import RdataType

from sigchain.core.dnssec import keyfile
from sigchain.core.serve.fromwire import served_form
from sigchain.core.verify.verifier import verify_records
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.records import b32hex_decode
from sigchain.edge import zonefile, zonesplit
from sigchain.model.keys import FLAG_REVOKE, FLAG_SEP
from sigchain.services import partverify
from tests.conftest import EXAMPLE_ZONE, need, run, sc
from tests.zonetools import (
    Nodes,
    drop,
    dump,
    keygen,
    keygen_apart,
    load,
    rdataset,
    resign,
    zone_keys,
)

ORIGIN = dns.name.from_text("example.test.")
WWW = dns.name.from_text("www.example.test.")
MAIL = dns.name.from_text("mail.example.test.")


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    keygen(d, "example.test", "ksk")
    keygen(d, "example.test", "zsk")
    keygen_apart(d, d / "outsider", "example.test", "zsk")  # a key of the zone it does not publish
    keygen(d / "ed25519", "example.test", "zsk", "ed25519")
    return d


def _sign(keydir: Path, out: Path, *extra: str) -> Nodes:
    sc("sign", EXAMPLE_ZONE, "--keys", keydir, "-o", out, *extra, check=True)
    return load(out).nodes


def _window() -> tuple[int, int]:
    now = int(time.time())
    return now - 3600, now + 7 * 86400


def _replace(nodes: Nodes, owner: dns.name.Name, rdtype: int, text: str) -> None:
    """Put one record (`text`) in place of the RRset (owner, rdtype), its TTL kept."""
    rds = rdataset(nodes, owner, rdtype)
    new = dns.rdataset.Rdataset(rds.rdclass, rdtype)
    new.update_ttl(rds.ttl)
    new.add(dns.rdata.from_text("IN", rdtype, text))
    drop(nodes, owner, rdtype)
    nodes[owner].append(new)


def tamper_rdata(nodes: Nodes, keydir: Path) -> None:
    _replace(nodes, WWW, RdataType.A, "192.0.2.66")


def remove_rrsig(nodes: Nodes, keydir: Path) -> None:
    drop(nodes, WWW, RdataType.RRSIG, RdataType.A)


def wrong_nsec_bitmap(nodes: Nodes, keydir: Path) -> None:
    """www has A and AAAA; its NSEC claims only A — correctly re-signed, so only the bitmap is wrong."""
    old = rdataset(nodes, WWW, RdataType.NSEC)[0]
    _replace_and_resign(nodes, keydir, WWW, RdataType.NSEC, f"{old.next} A RRSIG NSEC")


def _replace_and_resign(nodes: Nodes, keydir: Path, owner: dns.name.Name, rdtype: int, text: str) -> None:
    """Put one record in place of the RRset (owner, rdtype) and sign it properly with the ZSK,
    so that only its content is wrong."""
    _replace(nodes, owner, rdtype, text)
    _resign_by_zsk(nodes, keydir, owner, rdtype)


def _resign_by_zsk(nodes: Nodes, keydir: Path, owner: dns.name.Name, rdtype: int) -> None:
    _ksks, zsks = zone_keys(keydir, ORIGIN)
    resign(nodes, ORIGIN, owner, rdtype, zsks, *_window())


def _remove(nodes: Nodes, owner: dns.name.Name, rdtype: int) -> None:
    """Take away an RRset and its RRSIGs."""
    drop(nodes, owner, rdtype)
    drop(nodes, owner, RdataType.RRSIG, rdtype)


def _www_nsec3_owner(nodes: Nodes) -> dns.name.Name:
    param = rdataset(nodes, ORIGIN, RdataType.NSEC3PARAM)[0]
    return nsec3hash.nsec3_owner(WWW, ORIGIN, nsec3hash.Nsec3Params(param.iterations, param.salt))


def remove_nsec3(nodes: Nodes, keydir: Path) -> None:
    del nodes[_www_nsec3_owner(nodes)]


def wrong_nsec3_bitmap(nodes: Nodes, keydir: Path) -> None:
    owner = _www_nsec3_owner(nodes)
    text = rdataset(nodes, owner, RdataType.NSEC3)[0].to_text().rsplit(" ", 3)[0]  # drop "A AAAA RRSIG"
    _replace_and_resign(nodes, keydir, owner, RdataType.NSEC3, f"{text} A RRSIG")


def dnskey_signed_by_zsk_only(nodes: Nodes, keydir: Path) -> None:
    _ksks, zsks = zone_keys(keydir, ORIGIN)
    resign(nodes, ORIGIN, ORIGIN, RdataType.DNSKEY, zsks, *_window())


def remove_denial_chain(nodes: Nodes, keydir: Path) -> None:
    for owner in nodes:
        _remove(nodes, owner, RdataType.NSEC)


def remove_dnskey(nodes: Nodes, keydir: Path) -> None:
    _remove(nodes, ORIGIN, RdataType.DNSKEY)


def remove_nsec3param(nodes: Nodes, keydir: Path) -> None:
    _remove(nodes, ORIGIN, RdataType.NSEC3PARAM)


def nsec3param_disagrees(nodes: Nodes, keydir: Path) -> None:
    """The NSEC3PARAM says 5 iterations, the chain was made with 0."""
    _replace_and_resign(nodes, keydir, ORIGIN, RdataType.NSEC3PARAM, "1 0 5 -")


def add_nsec3param(nodes: Nodes, keydir: Path) -> None:
    """An NSEC-signed zone that also publishes (and signs) an NSEC3PARAM."""
    param = dns.rdataset.Rdataset(dns.rdataclass.IN, RdataType.NSEC3PARAM)
    param.add(dns.rdata.from_text("IN", "NSEC3PARAM", "1 0 0 -"), 0)
    nodes[ORIGIN].append(param)
    _resign_by_zsk(nodes, keydir, ORIGIN, RdataType.NSEC3PARAM)


def remove_nsec(nodes: Nodes, keydir: Path) -> None:
    _remove(nodes, WWW, RdataType.NSEC)


def nsec_next_skips(nodes: Nodes, keydir: Path) -> None:
    """mail's NSEC skips ns1, ns2, sub and web, correctly signed."""
    _replace_and_resign(nodes, keydir, MAIL, RdataType.NSEC, "www.example.test. A RRSIG NSEC")


def signed_by_unknown_key(nodes: Nodes, keydir: Path) -> None:
    """www A signed only by a key of the zone that is not in its DNSKEY RRset."""
    resign(nodes, ORIGIN, WWW, RdataType.A, zone_keys(keydir / "outsider", ORIGIN)[1], *_window())


def no_usable_key(nodes: Nodes, keydir: Path) -> None:
    """The DNSKEY RRset holds one malformed key and nothing is signed: nothing can be checked,
    which is no pass."""
    for name in list(nodes):
        nodes[name] = [r for r in nodes[name] if r.rdtype != RdataType.RRSIG]
    _replace(nodes, ORIGIN, RdataType.DNSKEY, "257 3 13 AAAA")


def dnskey_signed_by_a_revoked_ksk_only(nodes: Nodes, keydir: Path) -> None:
    """The KSK is published with the REVOKE bit and signs the DNSKEY RRset under its new tag
    (RFC 5011 §2.1), and no other KSK does: a revoked key anchors nothing."""
    ksks, _zsks = zone_keys(keydir, ORIGIN)
    revoked = [replace(k, dnskey=keyfile.revoked(k.dnskey)) for k in ksks]
    keys = rdataset(nodes, ORIGIN, RdataType.DNSKEY)
    for k, r in zip(ksks, revoked, strict=True):
        keys.discard(k.dnskey)
        keys.add(r.dnskey)
    resign(nodes, ORIGIN, ORIGIN, RdataType.DNSKEY, revoked, *_window())


def revoked_ksk_not_self_signed(nodes: Nodes, keydir: Path) -> None:
    """A second KSK is published revoked but does not sign the DNSKEY RRset (the zone's own
    KSK does): no resolver can check the revocation (RFC 5011 §2.1)."""
    other = zone_keys(keydir / "outsider", ORIGIN)[1][0].dnskey
    revoked_ksk = keyfile.with_flags(other, other.flags | FLAG_SEP | FLAG_REVOKE)
    rdataset(nodes, ORIGIN, RdataType.DNSKEY).add(revoked_ksk)
    resign(nodes, ORIGIN, ORIGIN, RdataType.DNSKEY, zone_keys(keydir, ORIGIN)[0], *_window())


Break = Callable[[Nodes, Path], None]
CASES: list[tuple[str, tuple[str, ...], Break | None, str]] = [
    ("tampered-rdata", (), tamper_rdata, "RRSIG_BAD_SIGNATURE"),
    ("removed-rrsig", (), remove_rrsig, "RRSIG_MISSING"),
    ("expired-rrsig", ("--inception", "now-30d", "--validity", "7d", "--force"), None, "RRSIG_EXPIRED"),
    ("inception-in-future", ("--inception", "now+2d", "--validity", "14d", "--force"), None, "RRSIG_NOT_YET_VALID"),
    ("nsec3-record-removed", ("--nsec3",), remove_nsec3, "NSEC3_CHAIN_BROKEN"),
    ("wrong-nsec-bitmap", (), wrong_nsec_bitmap, "NSEC_BITMAP_WRONG"),
    ("wrong-nsec3-bitmap", ("--nsec3",), wrong_nsec3_bitmap, "NSEC3_BITMAP_WRONG"),
    ("dnskey-signed-by-zsk-only", (), dnskey_signed_by_zsk_only, "DNSKEY_NOT_SIGNED_BY_KSK"),
    ("no-denial-chain", (), remove_denial_chain, "NO_DENIAL_CHAIN"),
    ("no-dnskey", (), remove_dnskey, "NO_DNSKEY"),
    ("no-nsec3param", ("--nsec3",), remove_nsec3param, "NSEC3PARAM_MISSING"),
    ("name-without-nsec3", ("--nsec3",), remove_nsec3, "NSEC3_MISSING"),
    ("no-usable-key", (), no_usable_key, "NO_USABLE_DNSKEY"),
    ("dnskey-signed-by-a-revoked-ksk-only", (), dnskey_signed_by_a_revoked_ksk_only,
     "DNSKEY_NOT_SIGNED_BY_KSK"),
    ("revoked-ksk-not-self-signed", (), revoked_ksk_not_self_signed,
     "DNSKEY_REVOKED_NOT_SELF_SIGNED"),
    ("nsec3param-disagrees", ("--nsec3",), nsec3param_disagrees, "NSEC3_PARAMS_INCONSISTENT"),
    ("nsec-and-nsec3param", (), add_nsec3param, "NSEC_AND_NSEC3"),
    ("name-without-nsec", (), remove_nsec, "NSEC_MISSING"),
    ("nsec-next-skips-names", (), nsec_next_skips, "NSEC_CHAIN_BROKEN"),
    ("signed-by-unknown-key", (), signed_by_unknown_key, "RRSIG_UNKNOWN_KEY"),
]


@pytest.mark.parametrize(("case", "sign_args", "breaker", "code"), CASES, ids=[c[0] for c in CASES])
def test_broken_zone_is_rejected(
    keydir: Path, tmp_path: Path, case: str, sign_args: tuple[str, ...], breaker: Break | None, code: str
) -> None:
    signed = tmp_path / "signed"
    # Expired / future zones fail our own pre-write verification: write them with -P.
    nodes = _sign(keydir, signed, *sign_args, *(("-P",) if breaker is None else ()))
    broken = tmp_path / f"{case}.zone"
    if breaker is not None:
        breaker(nodes, keydir)
    dump(broken, ORIGIN, nodes)

    proc = sc("verify", broken, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    codes = {f["code"] for f in json.loads(proc.stdout)["findings"]}
    assert code in codes

    peer = run([need("dnssec-verify"), "-o", "example.test", str(broken)])
    assert peer.returncode != 0, f"dnssec-verify accepted the {case} zone:\n{peer.stdout}{peer.stderr}"


def test_every_problem_is_reported_not_just_the_first(keydir: Path, tmp_path: Path) -> None:
    nodes = _sign(keydir, tmp_path / "signed")
    tamper_rdata(nodes, keydir)
    wrong_nsec_bitmap(nodes, keydir)
    dnskey_signed_by_zsk_only(nodes, keydir)
    mail = dns.name.from_text("mail.example.test.")
    drop(nodes, mail, RdataType.RRSIG, RdataType.A)
    broken = tmp_path / "many.zone"
    dump(broken, ORIGIN, nodes)
    proc = sc("verify", broken, "--json")
    assert proc.returncode == 1
    found = {(f["code"], f["name"]) for f in json.loads(proc.stdout)["findings"]}
    assert ("RRSIG_BAD_SIGNATURE", "www.example.test.") in found
    assert ("NSEC_BITMAP_WRONG", "www.example.test.") in found
    assert ("DNSKEY_NOT_SIGNED_BY_KSK", "example.test.") in found
    assert ("RRSIG_MISSING", "mail.example.test.") in found


def test_verify_at_a_time_inside_and_outside_the_window(keydir: Path, tmp_path: Path) -> None:
    signed = tmp_path / "signed"
    _sign(keydir, signed, "--inception", "20300101000000", "--validity", "10d", "--jitter", "0", "-P", "--force")
    assert sc("verify", signed, "--at", "20300105000000").returncode == 0
    late = sc("verify", signed, "--at", "20300112000000", "--json")
    assert late.returncode == 1 and "RRSIG_EXPIRED" in late.stdout
    early = sc("verify", signed, "--at", "20291231000000", "--json")
    assert early.returncode == 1 and "RRSIG_NOT_YET_VALID" in early.stdout


def nsec_ttl_too_long(nodes: Nodes, keydir: Path) -> None:
    """www's NSEC keeps the SOA TTL (3600), not min(SOA MINIMUM, SOA TTL) = 300, re-signed."""
    rdataset(nodes, WWW, RdataType.NSEC).ttl = 3600
    _resign_by_zsk(nodes, keydir, WWW, RdataType.NSEC)


def glue_signed(nodes: Nodes, keydir: Path) -> None:
    _resign_by_zsk(nodes, keydir, dns.name.from_text("ns.sub.example.test."), RdataType.A)


def algorithm_signs_nothing(nodes: Nodes, keydir: Path) -> None:
    """An Ed25519 key joins the DNSKEY RRset (signed by the KSK) but signs no RRset."""
    rdataset(nodes, ORIGIN, RdataType.DNSKEY).add(zone_keys(keydir / "ed25519", ORIGIN)[1][0].dnskey)
    ksks, _zsks = zone_keys(keydir, ORIGIN)
    resign(nodes, ORIGIN, ORIGIN, RdataType.DNSKEY, ksks, *_window())


def stale_rrsig_beside_a_valid_one(nodes: Nodes, keydir: Path) -> None:
    """www A keeps its valid RRSIG and gains an expired one by the same ZSK (a re-sign or a
    roll under way): one valid signature suffices, the stale one is a warning."""
    valid = [r for r in nodes[WWW] if r.rdtype == RdataType.RRSIG and r.covers == RdataType.A][0]
    _ksks, zsks = zone_keys(keydir, ORIGIN)
    now = int(time.time())
    resign(nodes, ORIGIN, WWW, RdataType.A, zsks, now - 30 * 86400, now - 10 * 86400)
    rdataset(nodes, WWW, RdataType.RRSIG, RdataType.A).update(valid)


# Problems dnssec-verify does not report (it passes these zones; a key of an algorithm that
# signs nothing is a "stand-by" key to it), but RFC rules name: ours reports each with its code,
# exit 1 for an error and 0 for a warning.
OURS_ONLY: list[tuple[str, tuple[str, ...], Break, str, int]] = [
    ("nsec3-salt", ("--nsec3", "--salt", "abcd"), lambda nodes, keydir: None, "NSEC3_SALT_PRESENT", 0),
    ("nsec-ttl-too-long", (), nsec_ttl_too_long, "NSEC_TTL_WRONG", 0),
    ("glue-signed", (), glue_signed, "RRSIG_ON_NON_AUTHORITATIVE", 1),
    ("algorithm-signs-nothing", (), algorithm_signs_nothing, "DNSKEY_ALGORITHM_UNSIGNED", 1),
    ("stale-rrsig-beside-a-valid-one", (), stale_rrsig_beside_a_valid_one, "RRSIG_UNUSED", 0),
]


@pytest.mark.parametrize(("case", "sign_args", "breaker", "code", "status"), OURS_ONLY,
                         ids=[c[0] for c in OURS_ONLY])
def test_problem_dnssec_verify_passes_is_reported(
    keydir: Path, tmp_path: Path, case: str, sign_args: tuple[str, ...], breaker: Break, code: str,
    status: int,
) -> None:
    nodes = _sign(keydir, tmp_path / "signed", *sign_args)
    breaker(nodes, keydir)
    broken = tmp_path / f"{case}.zone"
    dump(broken, ORIGIN, nodes)

    proc = sc("verify", broken, "--json")
    assert proc.returncode == status, proc.stdout + proc.stderr
    found = json.loads(proc.stdout)["findings"]
    assert [f["code"] for f in found] == [code], found
    human = sc("verify", broken)
    assert f" {code} " in human.stderr and found[0]["message"] in human.stderr

    peer = run([need("dnssec-verify"), "-o", "example.test", str(broken)])
    assert peer.returncode == 0, peer.stdout + peer.stderr


def test_an_insecure_delegation_skipped_without_an_opt_out_record_is_reported(
        keydir: Path, tmp_path: Path) -> None:
    """RFC 5155 §7.1: opt-out lets the chain skip an insecure delegation only where the NSEC3
    covering it has the opt-out flag; that one record cleared (and re-signed), a validator
    cannot prove insecure.example.test. has no DS. dnssec-verify lets it pass; ours names it."""
    nodes = _sign(keydir, tmp_path / "signed", "--nsec3", "--opt-out")
    param = rdataset(nodes, ORIGIN, RdataType.NSEC3PARAM)[0]
    target = nsec3hash.nsec3_digest(dns.name.from_text("insecure.example.test."), param.salt,
                                    param.iterations)
    owners = sorted((b32hex_decode(n.labels[0]), n) for n in nodes
                    if any(r.rdtype == RdataType.NSEC3 for r in nodes[n]))
    covering = max((o for o in owners if o[0] < target), default=owners[-1])[1]
    text = rdataset(nodes, covering, RdataType.NSEC3)[0].to_text().split(" ", 2)
    _replace_and_resign(nodes, keydir, covering, RdataType.NSEC3, f"{text[0]} 0 {text[2]}")
    broken = tmp_path / "opt-out-cleared.zone"
    dump(broken, ORIGIN, nodes)
    proc = sc("verify", broken, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    missing = [f for f in json.loads(proc.stdout)["findings"] if f["code"] == "NSEC3_MISSING"]
    assert [f["name"] for f in missing] == ["insecure.example.test."], missing
    peer = run([need("dnssec-verify"), "-o", "example.test", str(broken)])
    assert peer.returncode == 0, peer.stdout + peer.stderr


ALL_CASES = [c[:3] for c in CASES] + [c[:3] for c in OURS_ONLY]


@pytest.mark.parametrize(("case", "sign_args", "breaker"), ALL_CASES, ids=[c[0] for c in ALL_CASES])
def test_a_zone_verified_in_parts_has_the_same_findings(
    keydir: Path, tmp_path: Path, case: str, sign_args: tuple[str, ...], breaker: Break | None
) -> None:
    """A big file is read and verified in parts by one process each (services/partverify):
    on every broken zone, the same findings in the same order and the same counts as one
    pass over the whole zone (verifier.verify_records)."""
    nodes = _sign(keydir, tmp_path / "signed", *sign_args, *(("-P",) if breaker is None else ()))
    if breaker is not None:
        breaker(nodes, keydir)
    broken = tmp_path / f"{case}.zone"
    dump(broken, ORIGIN, nodes)
    now = int(time.time())
    whole = zonefile.load_wire(str(broken), "example.test.", require_ns=False, refuse_cname_clash=False)
    want = verify_records(whole.rrsets, ORIGIN, now)
    for count, served in ((2, False), (3, True)):
        cuts = zonesplit.plan(str(broken), ORIGIN, count)
        assert cuts is not None and len(cuts) == count
        parts = partverify.Parts(str(broken), ORIGIN, cuts, refuse_cname_clash=False)
        try:
            done = partverify.read_and_verify(parts, now, False, require_ns=False, records=True,
                                              only_signed=False, served=served)
        finally:
            parts.close()
        assert done is not None, "the file was not read in parts"
        zone, got = done
        assert got is not None and got.findings == want.findings and want.findings
        if served:  # the server's form of the same records
            assert zone.served == served_form(whole.rrsets) and not zone.rrsets
        else:
            assert zone.rrsets == whole.rrsets and zone.served is None
        assert zone.warnings == whole.warnings
        counts = ("rrsets_checked", "signatures_checked", "signatures_verified", "signatures_valid",
                  "denial", "nsec3", "algorithms")
        assert [getattr(got, c) for c in counts] == [getattr(want, c) for c in counts]
