"""`sigchain policy check`: built-ins pass, every problem of an unsafe file is listed (exit 1),
bad files name file and line (exit 2), and the timings shown add up."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import sc


def test_builtins_are_safe_and_show_their_arithmetic() -> None:
    out = sc("policy", "check", "ksk-zsk")
    assert out.returncode == 0, out.stderr
    assert "ZSK pre-publication (RFC 7583 §3.2.1)" in out.stdout
    assert ("Ipub = zone-propagation-delay 5m + dnskey-ttl 1h + publish-safety 1h = 2h5m"
            in out.stdout)
    assert "roll = IpubP + IretC = 1d4h5m" in out.stdout
    assert out.stdout.rstrip().endswith("policy ksk-zsk: safe")
    data = json.loads(sc("policy", "check", "default", "--json", check=True).stdout)
    assert data["safe"] is True and data["problems"] == [] and list(data["timings"]) == ["csk"]
    csk = data["timings"]["csk"]
    assert csk["total"] == sum(max(i["seconds"] for i in phase) for phase in csk["phases"])
    for phase in csk["phases"]:
        for interval in phase:
            assert interval["seconds"] == sum(t["seconds"] for t in interval["terms"])


def test_unsafe_file_lists_every_problem(tmp_path: Path) -> None:
    f = tmp_path / "weak.toml"
    f.write_text('signatures-refresh = "2h"\nmax-zone-ttl = "1d"\n'
                 "[nsec3param]\niterations = 5\n"
                 '[[keys]]\nrole = "ksk"\nalgorithm = "rsasha1"\nlifetime = "30d"\n')
    out = sc("policy", "check", f)
    assert out.returncode == 1
    for words in ("signatures-refresh 2h leaves less than max-zone-ttl 1d",
                  "algorithm 5 MUST NOT be used", "nsec3param.iterations 5",
                  "no zsk or csk: nothing signs the zone"):
        assert words in out.stdout, out.stdout
    assert "policy weak: unsafe (" in out.stdout
    data = json.loads(sc("policy", "check", f, "--json").stdout)
    assert data["safe"] is False and len(data["problems"]) >= 5


def test_short_lifetime_is_unsafe(tmp_path: Path) -> None:
    f = tmp_path / "fast.toml"
    f.write_text('[[keys]]\nrole = "ksk"\nlifetime = "1d"\n[[keys]]\nrole = "zsk"\n'
                 'lifetime = "7d"\n')
    out = sc("policy", "check", f)
    assert out.returncode == 1
    assert "keys[0]: ksk lifetime 1d is shorter than its KSK double-DS roll 1d4h5m" in out.stdout
    assert "keys[1]: zsk lifetime 7d is shorter than its ZSK pre-publication roll" in out.stdout


def test_bad_files_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "typo.toml"
    f.write_text('dnskey-ttl = "1h"\n\n[[keys]]\nrole = "csk"\nlifetime = "forever"\n')
    out = sc("policy", "check", f)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{f}:5: keys[0].lifetime: bad duration 'forever'" in out.stderr
    f.write_text("dnskey-ttl = [\n")
    out = sc("policy", "check", f, "--json")
    assert out.returncode == 2
    error = json.loads(out.stdout)["error"]
    assert error["file"] == str(f) and error["line"] == 1 and "bad TOML" in error["message"]
    missing = sc("policy", "check", tmp_path / "nope.toml")
    assert missing.returncode == 2 and "built-in policy" in missing.stderr


def test_simulate_builtins_pass_three_years() -> None:
    for name in ("default", "ksk-zsk"):
        out = sc("policy", "simulate", name, "--years", "3")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "every cached combination validates at every instant" in out.stdout
    data = json.loads(sc("policy", "simulate", "ksk-zsk", "--json", check=True).stdout)
    assert data["safe"] is True and data["failures"] == []
    assert sum(k["role"] == "ksk" for k in data["keys"]) == 3  # rolled yearly


def test_simulate_fails_when_the_world_has_longer_ttls_than_declared() -> None:
    out = sc("policy", "simulate", "ksk-zsk", "--actual-parent-ds-ttl", "10d")
    assert out.returncode == 1
    assert "FAILS at 2028-01-17 08:00:00 UTC: cached DS ['ksk-13-1']" in out.stdout
    assert "no DS matches a key that signs the DNSKEY RRset" in out.stdout
    data = json.loads(sc("policy", "simulate", "ksk-zsk", "--actual-max-zone-ttl", "30d",
                         "--json").stdout)
    assert data["safe"] is False
    assert data["failures"][0]["cause"] == "the data's signing keys are not in the DNSKEY RRset"
    # a slow parent is only waited for: the DS step is gated on the observed DS
    assert sc("policy", "simulate", "ksk-zsk", "--ds-lag", "60d").returncode == 0
    bad = sc("policy", "simulate", "ksk-zsk", "--ds-lag", "soon")
    assert bad.returncode == 2 and "--ds-lag: bad duration" in bad.stderr


def test_simulate_without_the_ds_gate_fails_when_the_parent_is_slower_than_it_waits() -> None:
    # Gated, a slow parent is only waited for (above). An engine that trusts elapsed time
    # instead swaps the KSK IpubP after asking for the DS, and only publish-safety (1h in
    # ksk-zsk) of that is slack for the parent's own delay: a DS later than that breaks it.
    within = sc("policy", "simulate", "ksk-zsk", "--no-ds-gate", "--ds-lag", "1h")
    assert within.returncode == 0, within.stdout
    assert "DS steps NOT gated" in within.stdout
    late = sc("policy", "simulate", "ksk-zsk", "--no-ds-gate", "--ds-lag", "1h1s")
    assert late.returncode == 1
    assert ("FAILS at 2028-01-15 08:00:00 UTC: cached DS ['ksk-13-1'], DNSKEY ['ksk-13-7'"
            in late.stdout), late.stdout
    assert "no DS matches a key that signs the DNSKEY RRset" in late.stdout
    for gate, safe in ((["--no-ds-gate"], False), ([], True)):
        data = json.loads(sc("policy", "simulate", "ksk-zsk", "--ds-lag", "2d", "--json",
                             *gate).stdout)
        assert data["ds_gate"] is not gate and data["safe"] is safe


def test_simulate_a_policy_that_never_secures_the_zone(tmp_path: Path) -> None:
    f = tmp_path / "tiny.toml"  # a ZSK that rolls before its signatures are ever everywhere
    f.write_text('[[keys]]\nrole = "ksk"\nlifetime = "3d"\n[[keys]]\nrole = "zsk"\n'
                 'lifetime = "2d"\n')
    out = sc("policy", "simulate", f, "--years", "1")
    assert out.returncode == 1
    assert "no DS was ever published, so the zone stayed insecure" in out.stdout
    f.write_text("keys = []\n")
    out = sc("policy", "simulate", f, "--years", "1", "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["secured"] is False
