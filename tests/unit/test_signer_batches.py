"""The signer's batches: however the canonical order is cut into batches for the workers,
the signed text is the same, and b32hex round-trips."""

from __future__ import annotations

import base64
import os

import dns.name
import dns.rdataset
import pytest

from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.dnssec.timefmt import format_timestamp14
from sigchain.core.sign import chains, signer
from sigchain.core.sign.batches import sign_units
from sigchain.core.sign.render import Timestamps
from sigchain.core.zone.nsec3hash import Nsec3Params, nsec3_digest
from sigchain.core.zone.records import b32hex, b32hex_decode, from_rdatasets
from sigchain.errors import UnsafeRefused
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming

N = dns.name.from_text
NOW = 1_800_000_000
ORIGIN = N("example.test.")


def _key(role: KeyRole) -> KeyPair:
    a = algorithms.get(13)
    priv = algorithms.generate(a)
    return KeyPair(ORIGIN, 13, keyfile.make_dnskey(a, priv, role.flags), priv, KeyTiming())


def _zone() -> dict[dns.name.Name, list[dns.rdataset.Rdataset]]:
    """Apex types on both sides of NSEC (47), ENTs, delegations with and without DS, glue,
    a wildcard and a DNAME with occluded data below it."""

    def rds(t: str, *texts: str) -> dns.rdataset.Rdataset:
        return dns.rdataset.from_text("IN", t, 300, *texts)

    z = {
        ORIGIN: [
            rds("SOA", "ns.example.test. h.example.test. 1 2 3 4 60"), rds("NS", "ns.example.test."),
            rds("CAA", '0 issue "ca.test"'), rds("TXT", '"apex"'),
        ],
        N("ns.example.test."): [rds("A", "192.0.2.1")],
        N("*.w.example.test."): [rds("TXT", '"w"'), rds("A", "192.0.2.9")],
        N("a.b.c.example.test."): [rds("A", "192.0.2.2")],
        N("sec.example.test."): [rds("NS", "ns.sec.example.test."), rds("DS", "1 13 2 " + "AB" * 32)],
        N("ns.sec.example.test."): [rds("A", "192.0.2.3")],
        N("insec.example.test."): [rds("NS", "ns.elsewhere.test.")],
        N("d.example.test."): [rds("DNAME", "target.test.")],
        N("under.d.example.test."): [rds("TXT", '"occluded"')],
    }
    for i in range(12):
        z[N(f"h{i}.x.example.test.")] = [rds("A", f"192.0.2.{10 + i}"), rds("AAAA", f"2001:db8::{i}")]
    return z


@pytest.mark.parametrize("nsec3", [None, Nsec3Params(), Nsec3Params(2, b"\xab\xcd", True)])
def test_batch_boundaries_do_not_change_the_output(nsec3: Nsec3Params | None) -> None:
    keys = [_key(KeyRole.KSK), _key(KeyRole.ZSK)]
    opts = signer.SignOptions(SigWindow(NOW - 3600, 86400, 3600, b"seed"), nsec3, deterministic=True)
    records = from_rdatasets(_zone())

    def signed(size: int) -> tuple[str, list[int]]:
        prep = signer.prepare(records, ORIGIN, keys, opts, NOW)
        texts, counts, units = [], [0] * len(prep.ctx.keys), 0
        for batch in prep.batches(size):
            assert 0 < batch.units <= 2 * size
            units += batch.units
            text, c, _ = sign_units(batch, prep.ctx)
            texts.append(text)
            counts = [a + b for a, b in zip(counts, c, strict=True)]
        assert units == prep.total
        return "".join(texts), counts

    whole = signed(10_000)
    for size in (1, 2, 3, 5, 8):
        assert signed(size) == whole


def test_b32hex_round_trip() -> None:
    for n in (1, 5, 19, 20, 21, 32):
        for _ in range(20):
            data = os.urandom(n)
            text = b32hex(data)
            assert text == base64.b32hexencode(data).decode().lower().rstrip("=")
            assert b32hex_decode(text.encode()) == data == b32hex_decode(text.upper())


def test_rrsig_timestamps_match_strftime() -> None:
    stamp = Timestamps()
    for t in (0, 1, 86399, 86400, 951782400, 1_800_000_000, 2**32 - 1, *range(1_799_990_000, 1_800_090_000, 997)):
        assert stamp(t) == format_timestamp14(t)


def test_nsec3_collisions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [_key(KeyRole.CSK)]
    opts = signer.SignOptions(SigWindow(NOW - 3600, 86400, 0), Nsec3Params())
    zone = _zone()
    # A name whose label is the hashed owner of another name in the zone.
    hashed = b32hex(nsec3_digest(N("ns.example.test."), b"", 0))
    zone[N(f"{hashed}.example.test.")] = zone[N("ns.example.test.")]
    with pytest.raises(UnsafeRefused, match=f"NSEC3 owner {hashed}.example.test. collides"):
        signer.prepare(from_rdatasets(zone), ORIGIN, keys, opts, NOW)
    # Two names with one hash (as if SHA-1 collided): both are named.
    monkeypatch.setattr(chains, "b32hex", lambda d: "0" * 32)
    with pytest.raises(UnsafeRefused, match=r"hash collision between example\.test\. and c\.example\.test\.:"):
        signer.prepare(from_rdatasets(_zone()), ORIGIN, keys, opts, NOW)
