"""The exporter's pure parts: signature times, the DS comparison, the metric families, and
the config file's errors."""

from __future__ import annotations

from pathlib import Path

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sigchain.core.dnssec.ds import make_ds
from sigchain.core.probe import zone as judge
from sigchain.core.probe.metrics import families
from sigchain.core.probe.zone import DsProbe, ResolverProbe, ServerProbe, SigTimes, ZoneSnapshot
from sigchain.errors import InputError
from sigchain.services.exporterconfig import load_config

ZONE = dns.name.from_text("ops.test.")
NOW = 1_800_000_000


def _signed_keys(expiration: int) -> tuple[dns.rrset.RRset, dns.rrset.RRset, dns.rdata.Rdata]:
    private = ec.generate_private_key(ec.SECP256R1())
    key = dns.dnssec.make_dnskey(private.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256,
                                 flags=257)
    keys = dns.rrset.from_rdata(ZONE, 300, key)
    sig = dns.dnssec.sign(keys, private, ZONE, key, inception=NOW - 3600,
                          expiration=expiration)
    return keys, dns.rrset.from_rdata(ZONE, 300, sig), key


def test_signature_times_take_the_earliest_per_rrset() -> None:
    keys, sigs, _ = _signed_keys(NOW + 100)
    _, later, _ = _signed_keys(NOW + 900)
    both = dns.rrset.from_rdata(ZONE, 300, sigs[0], later[0])
    times = judge.signature_times([keys, both])
    assert times == (SigTimes("ops.test.", "DNSKEY", NOW + 100, NOW - 3600),)


def test_ds_match_needs_a_key_that_signs_the_dnskey_rrset() -> None:
    keys, sigs, key = _signed_keys(NOW + 86400)
    ds = dns.rrset.from_rdata(ZONE, 300, make_ds(ZONE, key, 2))
    assert judge.ds_match(ZONE, ds, [keys, sigs])
    # an expired signature still shows the key signs: the DS is right (re-signing is the fix)
    old_keys, old_sigs, old_key = _signed_keys(NOW - 60)
    assert judge.ds_match(ZONE, dns.rrset.from_rdata(ZONE, 300, make_ds(ZONE, old_key, 2)),
                          [old_keys, old_sigs])
    forged = dns.rrset.from_rdata(ZONE, 300, sigs[0].replace(signature=bytes(64)))
    assert not judge.ds_match(ZONE, ds, [keys, forged])  # a signature that is not one
    assert not judge.ds_match(ZONE, ds, [keys])  # no signature
    _, _, stranger = _signed_keys(NOW + 86400)
    other = dns.rrset.from_rdata(ZONE, 300, make_ds(ZONE, stranger, 2))  # type: ignore[arg-type]
    assert not judge.ds_match(ZONE, other, [keys, sigs])
    assert not judge.ds_match(ZONE, None, [keys, sigs])


def test_an_answer_without_aa_or_signatures_is_not_good() -> None:
    query = dns.message.make_query(ZONE, "SOA")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text(ZONE, 300, "IN", "SOA", "ns h 1 2 3 4 5"))
    assert "lame" in judge.authoritative_answer(reply, ZONE, 6)[1]
    reply.flags |= dns.flags.AA
    assert "no RRSIG" in judge.authoritative_answer(reply, ZONE, 6)[1]


def test_a_large_answer_counts_only_validated_and_whole() -> None:
    """The DNSKEY RRset needs AD and its RRSIGs; a denial needs AD and signed proofs; a
    SERVFAIL (what a resolver says when the path cut the answer) fails."""
    keys, sigs, _ = _signed_keys(NOW + 86400)
    reply = dns.message.make_response(dns.message.make_query(ZONE, "DNSKEY", want_dnssec=True))
    reply.answer += [keys, sigs]
    assert judge.large_answer(reply, dns.rdatatype.DNSKEY) == "NOERROR without AD"
    reply.flags |= dns.flags.AD
    assert judge.large_answer(reply, dns.rdatatype.DNSKEY) == ""
    reply.answer = [keys]
    assert "without its RRSIGs" in judge.large_answer(reply, dns.rdatatype.DNSKEY)
    reply.answer = []
    assert "no DNSKEY" in judge.large_answer(reply, dns.rdatatype.DNSKEY)
    absent = dns.name.from_text("nope", ZONE)
    denial = dns.message.make_response(dns.message.make_query(absent, "A", want_dnssec=True))
    denial.set_rcode(dns.rcode.NXDOMAIN)
    denial.flags |= dns.flags.AD
    assert "without its signed proofs" in judge.large_answer(denial, dns.rdatatype.A)
    denial.authority.append(dns.rrset.from_rdata(ZONE, 300, sigs[0]))
    assert judge.large_answer(denial, dns.rdatatype.A) == ""
    denial.set_rcode(dns.rcode.SERVFAIL)
    assert judge.large_answer(denial, dns.rdatatype.A) == "SERVFAIL"


def test_large_answer_family_beside_validates() -> None:
    """Exported per resolver that answered the SOA; absent for one that did not answer."""
    snap = ZoneSnapshot("ops.test.", NOW, resolvers=(
        ResolverProbe("ops.test.", "127.0.0.8", True, 0.1, validates=True, large_ok=False,
                      large_error="DNSKEY: timed out"),
        ResolverProbe("ops.test.", "127.0.0.9", True, 0.1, validates=True, large_ok=True),
        ResolverProbe("ops.test.", "127.0.0.10", False, 2.0, "timed out")))
    s = _samples([snap])
    large = "dnssec_zone_resolver_large_answer_ok"
    assert s[(large, ("ops.test.", "127.0.0.8"))] == 0
    assert s[("dnssec_zone_validates", ("ops.test.", "127.0.0.8"))] == 1
    assert s[(large, ("ops.test.", "127.0.0.9"))] == 1
    assert (large, ("ops.test.", "127.0.0.10")) not in s


def _samples(snaps: list[ZoneSnapshot]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(f.name, labels): v for f in families(snaps) for labels, v in f.samples}


def test_families_per_server_and_no_stale_data_for_a_failed_probe() -> None:
    sigs = (SigTimes("ops.test.", "SOA", NOW + 50, NOW - 10),
            SigTimes("www.ops.test.", "A", NOW + 20, NOW - 10))
    snap = ZoneSnapshot("ops.test.", NOW, (
        ServerProbe("ops.test.", "127.0.0.1", True, 0.01, serial=7, sigs=sigs),
        ServerProbe("ops.test.", "127.0.0.2", False, 2.0, "timed out")),
        (DsProbe("ops.test.", "127.0.0.2", True, 0.5, count=2, matches=True),))
    s = _samples([snap])
    assert s[("dnssec_zone_rrsig_earliest_expiry_timestamp_seconds",
              ("ops.test.", "127.0.0.1"))] == NOW + 20
    assert s[("dnssec_zone_serial", ("ops.test.", "127.0.0.1"))] == 7
    assert ("dnssec_zone_serial", ("ops.test.", "127.0.0.2")) not in s
    # 127.0.0.2 is probed as a server (failed) and as a parent (ok): one series, failed.
    assert s[("dnssec_probe_success", ("ops.test.", "127.0.0.2"))] == 0
    assert s[("dnssec_probe_duration_seconds", ("ops.test.", "127.0.0.2"))] == 2.5
    assert s[("dnssec_zone_ds_count", ("ops.test.", "127.0.0.2"))] == 2


def test_no_dnskey_answer_is_no_ds_mismatch() -> None:
    """Every server of the zone down (or refusing): the parent's DS has nothing to be
    compared with — no match sample, rather than a 0 that raises DnssecDsMismatch ("restore
    the key or update the DS") for an outage."""
    snap = ZoneSnapshot("ops.test.", NOW, (
        ServerProbe("ops.test.", "127.0.0.1", False, 2.0, "timed out"),),
        (DsProbe("ops.test.", "127.0.0.9", True, 0.5, count=1, matches=None),))
    s = _samples([snap])
    assert ("dnssec_zone_ds_matches_dnskey", ("ops.test.", "127.0.0.9")) not in s
    assert s[("dnssec_zone_ds_count", ("ops.test.", "127.0.0.9"))] == 1


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "exporter.toml"
    path.write_text('listen = "127.0.0.1#9999"\ninterval = "30s"\nresolvers = ["127.0.0.3"]\n\n'
                    '[zones."ops.test."]\nservers = ["127.0.0.1#5300"]\naxfr = true\n')
    config = load_config(str(path))
    (t,) = config.zones
    assert (t.zone, t.axfr, t.interval, str(t.servers[0]), str(t.resolvers[0])) == (
        ZONE, True, 30, "127.0.0.1#5300", "127.0.0.3")
    path.write_text('listen = "127.0.0.1#9999"\n\n[zones."ops.test."]\n'
                    'servers = ["127.0.0.1#5300"]\naxfr = "yes"\n')
    with pytest.raises(InputError) as err:
        load_config(str(path))
    assert err.value.line == 5 and "axfr" in str(err.value)
    # keys = "DIR": the zone's sigchain key directory, relative to the file.
    path.write_text('listen = "127.0.0.1#9999"\n\n[zones."ops.test."]\n'
                    'servers = ["127.0.0.1#5300"]\nkeys = "k"\n')
    assert load_config(str(path)).zones[0].keys == str(tmp_path / "k")
    path.write_text('listen = "127.0.0.1#9999"\n\n[zones."ops.test."]\n'
                    'servers = ["127.0.0.1#5300"]\nkeys = 3\n')
    with pytest.raises(InputError) as err:
        load_config(str(path))
    assert err.value.line == 5 and "keys" in str(err.value)


def test_key_state_families_come_from_a_key_source() -> None:
    """The seam for the key lifecycle: a KeySource's families are served beside the probes'."""
    from prometheus_client import generate_latest

    from sigchain.core.probe.metrics import Family
    from sigchain.services.exporter import Exporter
    from sigchain.services.exporterconfig import ExporterConfig, ListenAddress

    class Keys:
        def families(self, now: int) -> list[Family]:
            return [Family("dnssec_key_state", "state", ("zone", "keytag", "role", "record"),
                           [(("ops.test.", "12345", "ksk", "DS"), 2.0)])]

    exporter = Exporter(ExporterConfig(ListenAddress("127.0.0.1", 9)), keys=[Keys()])
    text = generate_latest(exporter.registry).decode()
    assert 'dnssec_key_state{keytag="12345",record="DS",role="ksk",zone="ops.test."} 2.0' in text


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    from tests.conftest import sc

    config = tmp_path / "bad.toml"
    config.write_text('listen = "127.0.0.1#9"\n[zones."x."]\nservers = ["nope"]\n')
    proc = sc("exporter", "--config", config)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"sigchain: error: {config}:3: bad server 'nope': expected an "
                                   "IP address, ADDR[#PORT]")
    proc = sc("exporter", "--listen", "127.0.0.1#9", "--zone", "x.=127.0.0.1", "--anchor", config)
    assert proc.returncode == 2 and "--resolver" in proc.stderr
    proc = sc("walk", "x.", "--server", "127.0.0.1", "--wordlist", tmp_path / "missing")
    assert proc.returncode == 2 and "missing: cannot read" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
