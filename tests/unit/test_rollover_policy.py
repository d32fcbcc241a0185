"""Policy files (BIND dnssec-policy names in TOML), durations, and RFC 7583's timing formulas."""

from __future__ import annotations

import pytest

from sigchain.core.rollover import durations, timings
from sigchain.core.rollover import policy as pol
from sigchain.errors import InputError

H, D = 3600, 86400


@pytest.mark.parametrize(("text", "seconds"), [
    ("90d", 90 * D), ("12h", 12 * H), ("30m", 1800), ("45s", 45), ("1d12h", 36 * H),
    ("P90D", 90 * D), ("PT1H", H), ("P1Y", 365 * D), ("P1M", 30 * D), ("P1DT2H3M4S", D + 7384),
    ("P2W", 14 * D), (3600, 3600),
])
def test_durations(text: str | int, seconds: int) -> None:
    assert durations.parse(text) == seconds
    assert durations.parse(durations.render(seconds)) == seconds


@pytest.mark.parametrize("bad", ["P", "PT", "P1DT", "1d12", "P1H", "-5", True, 1.5])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(InputError):
        durations.parse(bad)


def test_builtins_follow_bind_918_defaults() -> None:
    # `named -C` on BIND 9.18.49 prints these for dnssec-policy "default".
    p = pol.builtin("default")
    assert (p.dnskey_ttl, p.publish_safety, p.retire_safety, p.purge_keys) == (H, H, H, 90 * D)
    assert (p.signatures_validity, p.signatures_validity_dnskey, p.signatures_refresh,
            p.signatures_jitter) == (14 * D, 14 * D, 5 * D, 12 * H)
    assert (p.max_zone_ttl, p.zone_propagation_delay, p.parent_ds_ttl,
            p.parent_propagation_delay) == (D, 300, D, H)
    assert p.keys == (pol.KeySpec("csk", 13, None),)
    assert p.nsec3 == pol.Nsec3Param(0, 0, False)
    ksk_zsk = pol.builtin("ksk-zsk")
    assert ksk_zsk.keys == (pol.KeySpec("ksk", 13, 365 * D), pol.KeySpec("zsk", 13, 90 * D))
    assert timings.check(p) == [] and timings.check(ksk_zsk) == []


def test_parse_full_file() -> None:
    text = """
dnskey-ttl = "2h"
publish-safety = "PT30M"
max-zone-ttl = 600
cds-digest-types = ["sha-256", "sha-384"]
cdnskey = false

[nsec3param]
iterations = 0
optout = true

[[keys]]
role = "ksk"
algorithm = "ecdsap384sha384"
lifetime = "P1Y"

[[keys]]
role = "zsk"
algorithm = 14
lifetime = "unlimited"
"""
    p = pol.parse(text, "p.toml", "p")
    assert (p.dnskey_ttl, p.publish_safety, p.max_zone_ttl) == (2 * H, 1800, 600)
    assert p.retire_safety == H  # default kept
    assert p.cds_digest_types == (2, 4) and p.cdnskey is False
    assert p.nsec3 == pol.Nsec3Param(0, 0, True)
    assert p.keys == (pol.KeySpec("ksk", 14, 365 * D), pol.KeySpec("zsk", 14, None))
    assert pol.parse("nsec = true\n", "p.toml", "p").nsec3 is None
    alias = pol.parse('[[keys]]\nrole = "csk"\nalgorithm = "ECDSA256"\n', "p.toml", "p")
    assert alias.keys == (pol.KeySpec("csk", 13),)  # BIND's short name
    assert pol.parse("", "p.toml", "p").keys == (pol.KeySpec("csk", 13),)  # as BIND: no keys


@pytest.mark.parametrize(("text", "line", "words"), [
    ("dnskey-ttl = \n", 1, "bad TOML"),
    ("\n\ndnskey-tll = 5\n", 3, "dnskey-tll: unknown option"),
    ("dnskey-ttl = 1\nretire-safety = \"soon\"\n", 2, "retire-safety: bad duration"),
    ("[[keys]]\nrole = \"zsk\"\n[[keys]]\nrole = \"kzk\"\n", 4, "keys[1].role"),
    ("[[keys]]\nrole = \"csk\"\nalgorithm = \"rot13\"\n", 3, "keys[0].algorithm: unknown"),
    ("[[keys]]\nrole = \"csk\"\n\nlifetime = \"P\"\n", 4, "keys[0].lifetime"),
    ("[nsec3param]\niterations = -1\n", 2, "nsec3param.iterations"),
    ("nsec = true\n[nsec3param]\n", 1, "not both"),
    ("cds-digest-types = [\"md5\"]\n", 1, "unknown digest type"),
])
def test_bad_files_name_line_and_key(text: str, line: int, words: str) -> None:
    with pytest.raises(InputError) as exc:
        pol.parse(text, "bad.toml", "bad")
    assert exc.value.file == "bad.toml" and exc.value.line == line, str(exc.value)
    assert words in str(exc.value)


def _p(**kw: object) -> pol.KeyPolicy:
    return pol.KeyPolicy("t", **kw)  # type: ignore[arg-type]


def test_rfc7583_zsk_prepublication_formulas() -> None:
    # RFC 7583 §3.2.1 (pre-publication ZSK roll): Ipub = Dprp + TTLkey, Trdy(N+1) =
    # Tpub(N+1) + Ipub, Tpub(N+1) <= Tact(N) + Lzsk - Ipub, Iret = Dsgn + Dprp + TTLsig,
    # Trem(N) = Tret(N) + Iret; BIND adds publish-safety / retire-safety to each.
    # BIND's system test zsk-prepub: Lzsk 30d, Dprp 1h, TTLkey 1h, publish-safety 1d → Ipub 26h.
    p = _p(zone_propagation_delay=H, dnskey_ttl=H, publish_safety=D, retire_safety=2 * H,
           max_zone_ttl=6 * H, signatures_validity=14 * D, signatures_refresh=5 * D)
    assert timings.ipub(p).seconds == 26 * H
    dprp, ttlkey, lzsk = H, H, 30 * D
    tact_n = 0
    assert tact_n + lzsk - timings.ipub(p).seconds == 30 * D - 26 * H  # latest Tpub(N+1)
    dsgn = 14 * D - 5 * D
    assert timings.sign_delay(p) == dsgn
    assert timings.iret_zsk(p).seconds == dsgn + dprp + 6 * H + 2 * H
    zsk = timings.rolls(p)["zsk"]
    assert zsk.total == (dprp + ttlkey + D) + (dsgn + dprp + 6 * H + 2 * H)


def test_rfc7583_ksk_double_ds_formulas() -> None:
    # RFC 7583 §3.3.2 (double-DS KSK roll): after the new DS is registered at the parent
    # (Dreg, observed here instead of assumed), IpubP = DprpP + TTLds before the DNSKEY swap;
    # then IretC = DprpC + TTLkey before the old DS may be withdrawn.
    p = _p(parent_propagation_delay=2 * H, parent_ds_ttl=D, publish_safety=0, retire_safety=0,
           zone_propagation_delay=300, dnskey_ttl=H)
    assert timings.ipub_parent(p).seconds == 2 * H + D
    assert timings.iret_child(p).seconds == 300 + H
    assert timings.rolls(p)["ksk"].total == 2 * H + D + 300 + H
    assert "DS" in timings.rolls(p)["ksk"].gated_on


def test_csk_roll_takes_the_longer_of_each_phase() -> None:
    p = _p(parent_ds_ttl=2 * D, dnskey_ttl=H)
    csk = timings.rolls(p)["csk"]
    assert csk.total == (max(timings.ipub(p).seconds, timings.ipub_parent(p).seconds)
                         + max(timings.iret_zsk(p).seconds, timings.iret_child(p).seconds))
    assert csk.total == timings.ipub_parent(p).seconds + timings.iret_zsk(p).seconds


def test_check_lists_every_problem() -> None:
    p = _p(signatures_refresh=H, max_zone_ttl=D, nsec3=pol.Nsec3Param(10, 8),
           cds_digest_types=(1,),
           keys=(pol.KeySpec("ksk", 5, 365 * D), pol.KeySpec("ksk", 13, 2 * H)))
    codes = [(x.code, x.unsafe) for x in timings.check(p)]
    assert ("refresh-too-short", True) in codes
    assert ("algorithm-forbidden", True) in codes  # RSASHA1
    assert ("lifetime-shorter-than-roll", True) in codes  # 2h KSK vs a >1d double-DS
    assert ("no-key-for-role", True) in codes  # nothing signs the zone
    assert ("digest-forbidden", True) in codes
    assert ("nsec3-iterations", True) in codes and ("nsec3-salt", False) in codes
    assert ("algorithm-half-covered", True) in codes
    assert len(codes) >= 9  # refresh too short for both signature kinds


def test_refresh_margin_boundary() -> None:
    # signatures-refresh must leave max-zone-ttl + zone-propagation-delay before expiry.
    ok = _p(max_zone_ttl=D, zone_propagation_delay=300, dnskey_ttl=H, signatures_refresh=D + 300)
    short = _p(max_zone_ttl=D, zone_propagation_delay=300, dnskey_ttl=H,
               signatures_refresh=D + 299)
    assert not any(x.code == "refresh-too-short" for x in timings.check(ok))
    assert [x.code for x in timings.check(short)] == ["refresh-too-short"]


def test_a_lowered_ttl_still_holds_for_what_caches_kept_under_the_old_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """RFC 7583's TTLs are those of the copies in caches: a DNSKEY TTL lowered from a day to
    an hour still times every rise and fall with the day until the copies made under it have
    expired (now + a day + the propagation delays), as Knot keeps its saved TTLs; the state
    keeps that across runs, then lets it go."""
    import dataclasses

    import dns.name

    from sigchain.core.rollover import timings
    from sigchain.core.rollover.policy import builtin, carried, in_effect
    from sigchain.services import keymanager, keystate

    day = 86400
    slow = dataclasses.replace(builtin("ksk-zsk"), dnskey_ttl=day)
    fast = dataclasses.replace(slow, dnskey_ttl=3600)
    assert carried({}, slow, fast, 1000) == {"dnskey_ttl": (day, 1000 + day + 3600)}
    assert carried({}, fast, slow, 1000) == {}  # raised: the new value is the larger anyway
    assert carried({"dnskey_ttl": (day, 2000)}, None, fast, 2000) == {}  # its time is over
    assert in_effect(fast, {"dnskey_ttl": (day, 5000)}).dnskey_ttl == day

    zone, keys = dns.name.from_text("example.test."), str(tmp_path / "keys")
    t0 = 1_800_000_000
    keymanager.run(zone, slow, keys, t0)
    keymanager.run(zone, fast, keys, t0 + 100)  # the TTL lowered
    kept = keystate.load(keys, zone.to_text()).carried
    assert kept == {"dnskey_ttl": (day, t0 + 100 + day + 3600)}
    assert timings.ipub(in_effect(fast, kept)).seconds == timings.ipub(slow).seconds
    keymanager.run(zone, fast, keys, t0 + 200)  # a later run keeps it
    assert keystate.load(keys, zone.to_text()).carried == kept
    keymanager.run(zone, fast, keys, t0 + 100 + day + 3600)  # the old copies are gone
    assert keystate.load(keys, zone.to_text()).carried == {}
