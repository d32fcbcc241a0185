"""Row 3 of `sigchain check` (pure): the DS at each parent server against the live KSKs."""

from __future__ import annotations

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset

from sigchain.core.diagnose.checklist import ds_row, live_ksks
from sigchain.core.dnssec import algorithms, ds, keyfile

ZONE = dns.name.from_text("example.test.")
ALG = algorithms.get(13)


def key(flags: int):  # type: ignore[no-untyped-def]
    return keyfile.make_dnskey(ALG, algorithms.generate(ALG), flags)


def distinct(*flags: int) -> list:  # type: ignore[type-arg]
    """Keys with these flags, no two of one tag (the checks tell keys apart by tag)."""
    while True:
        keys = [key(f) for f in flags]
        if len({dns.dnssec.key_id(k) for k in keys}) == len(keys):
            return keys


KSK, OLD_KSK, ZSK, REVOKED = distinct(257, 257, 256, 257 | 0x80)


def dnskey_rrsets(signers: list) -> list[dns.rrset.RRset]:  # type: ignore[type-arg]
    keys = dns.rrset.from_rdata_list(ZONE, 300, [KSK, ZSK, REVOKED])
    sigs = [dns.rdata.from_text("IN", "RRSIG", f"DNSKEY 13 2 300 20270101000000 20261201000000 "
                                f"{dns.dnssec.key_id(k)} example.test. AAAA") for k in signers]
    return [keys, dns.rrset.from_rdata_list(ZONE, 300, sigs)]


def test_only_signing_unrevoked_keys_are_live() -> None:
    live = live_ksks(ZONE, dnskey_rrsets([KSK, REVOKED]))
    assert set(live) == {dns.dnssec.key_id(KSK)}
    assert live_ksks(ZONE, dnskey_rrsets([REVOKED])) == {}  # only a revoked key signs


def test_a_key_without_the_sep_flag_that_signs_the_dnskey_rrset_is_live() -> None:
    """Validators ignore the SEP flag (RFC 4034 §2.1.1): a DS for a flags-256 key that signs
    the DNSKEY RRset is a working link, as the exporter's DS metric says too."""
    rrsets = dnskey_rrsets([ZSK])
    assert set(live_ksks(ZONE, rrsets)) == {dns.dnssec.key_id(ZSK)}
    assert ds_row(ZONE, {"a": [ds.make_ds(ZONE, ZSK, 2)]}, rrsets).ok


def test_every_parent_server_needs_a_ds_for_a_live_ksk() -> None:
    good, stale = ds.make_ds(ZONE, KSK, 2), ds.make_ds(ZONE, OLD_KSK, 2)
    rrsets = dnskey_rrsets([KSK, ZSK])
    assert ds_row(ZONE, {"a": [good], "b": [good, stale]}, rrsets).ok
    row = ds_row(ZONE, {"a": [good], "b": [stale]}, rrsets)
    assert not row.ok and f"b: DS {stale.key_tag} matches no live KSK" in row.detail
    assert not ds_row(ZONE, {"a": [good], "b": "timed out"}, rrsets).ok
    assert not ds_row(ZONE, {"a": []}, rrsets).ok
    assert not ds_row(ZONE, {}, rrsets).ok
