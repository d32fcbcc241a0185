"""`sigchain resolver`'s config: the README's example parses; flags override the file; bad
settings name the file and line (exit 2)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dns.name
import pytest

from sigchain.errors import InputError
from sigchain.services.resolverconfig import from_flags, parse_config
from tests.conftest import ROOT, sc


def readme_example() -> str:
    text = (ROOT / "README.md").read_text().split("### `sigchain resolver`", 1)[1]
    return text.split("```toml\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_parses(tmp_path: Path) -> None:
    c = parse_config(readme_example(), str(tmp_path / "resolver.toml"))
    assert [str(a) for a in c.listens] == ["127.0.0.1#53", "::1#5353"]
    assert c.anchor == str(tmp_path / "anchor.ds") and c.root_hints == str(tmp_path / "root.hints")
    assert c.allow == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8"))
    [(zone, servers)] = c.forward
    assert zone == dns.name.from_text("corp.example.") and [str(s) for s in servers] == ["10.0.0.53", "10.0.0.54"]
    assert c.require_secure == (dns.name.from_text("corp.example."),)
    assert str(c.metrics) == "127.0.0.1#9153"
    assert (c.cache.max_bytes, c.cache.bogus_ttl, c.cache.stale_window) == (67108864, 60, 0)
    assert (c.limits.max_queries, c.limits.max_chain, c.limits.max_depth) == (64, 8, 3)
    assert (c.policy.limits.max_verifications, c.policy.max_nsec3_iterations) == (64, 150)
    assert (c.identity, c.version) == ("resolver-1", "")


def test_limits_table_sets_the_work_bounds(tmp_path: Path) -> None:
    c = parse_config("[limits]\nmax-queries = 5\nmax-nsec3-iterations = 0\nmax-verifications = 9\n",
                     str(tmp_path / "r.toml"))
    assert c.limits.max_queries == 5 and c.limits.max_referrals == 30
    assert c.policy.max_nsec3_iterations == 0 and c.policy.limits.max_verifications == 9
    assert c.policy.limits.max_nsec3_hashes == 150


def test_flags_override_the_file(tmp_path: Path) -> None:
    base = parse_config('allow = "10.0.0.0/8"\nlisten = "127.0.0.2"\n', str(tmp_path / "r.toml"))
    c = from_flags(listens=["127.0.0.3#5300"], base=base)
    assert [str(a) for a in c.listens] == ["127.0.0.3#5300"]
    assert c.allow == (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize("text,line,words", [
    ('listen = "127.0.0.1"\nallow = ["10.0.0.0/33"]\n', 2, "bad --allow"),
    ('forward = ["corp.example."]\n', 1, "expected ZONE=ADDR"),
    ('colour = "blue"\n', 1, "unknown setting 'colour'"),
    ('[cache]\nmax-ttl = -1\n', 2, "cache.max-ttl must be"),
    ('[cache]\nsize = 1\n', 2, "unknown setting 'size' in [cache]"),
    ('listen = [1]\n', 1, "listen must be a string"),
    ('[limits]\nmax-queries = 0\n', 2, "limits.max-queries must be an integer in 1..1000"),
    ('workers = 1\nversion = 1\n', 2, "version must be a string of at most 255 octets"),
    (f'identity = "{"x" * 256}"\n', 1, "identity must be a string of at most 255 octets"),
])
def test_bad_settings_name_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    with pytest.raises(InputError) as bad:
        parse_config(text, str(tmp_path / "r.toml"))
    assert bad.value.line == line and words in str(bad.value)


def test_cli_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('allow = ["nonsense"]\n')
    proc = sc("resolver", "--config", path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{path}:1:" in proc.stderr and "bad --allow" in proc.stderr
    missing = sc("resolver", "--anchor", tmp_path / "nope.ds", "--listen", "127.55.0.40#5399")
    assert missing.returncode == 2 and "nope.ds" in missing.stderr and "Traceback" not in missing.stderr


def test_negative_anchors_from_the_config_file(tmp_path: Path) -> None:
    c = parse_config('nta-recheck = 60\n[[negative-anchors]]\nname = "a.test"\nlifetime = "2h"\n'
                     '[[negative-anchors]]\nname = "b.test."\n', str(tmp_path / "r.toml"))
    assert c.nta_recheck == 60 and [(n.to_text(), t) for n, t in c.negative] == [
        ("a.test.", 7200), ("b.test.", 3600)]
    with pytest.raises(InputError) as bad:
        parse_config('[[negative-anchors]]\nname = "a.test"\n\n[[negative-anchors]]\nname = "b"\n'
                     'lifetime = "8d"\n', str(tmp_path / "r.toml"))
    assert bad.value.line == 4 and "at most 7 days" in str(bad.value)


def test_a_reload_keeps_each_ntas_expiry_and_renews_only_a_changed_one() -> None:
    """RFC 7646 §2: an NTA ends. SIGHUP re-reads the config: an NTA configured before keeps
    its expiry (an expired one, or one its re-check dropped, stays gone); one whose lifetime
    changed is renewed; one no longer configured goes."""
    from types import SimpleNamespace

    import dns.name

    from sigchain.services.resolveranchors import AnchorKeeper

    t0 = 1_800_000_000
    name = dns.name.from_text("broken.example.")
    service = SimpleNamespace()

    def keeper(now: int, flags: list[str], previous: AnchorKeeper | None = None) -> AnchorKeeper:
        return AnchorKeeper(service, now, from_flags(negative=flags), previous)  # type: ignore[arg-type]

    first = keeper(t0, ["broken.example=1h"])
    assert first.is_negative(name, t0 + 10)
    again = keeper(t0 + 4000, ["broken.example=1h"], first)
    assert not again.is_negative(name, t0 + 4000)  # expired at t0 + 3600: not renewed
    first.negative = first.negative.remove(name)  # as a re-check that found it validating
    assert not keeper(t0 + 100, ["broken.example=1h"], first).is_negative(name, t0 + 100)
    longer = keeper(t0 + 4000, ["broken.example=2h"], again)
    assert longer.is_negative(name, t0 + 4000 + 7000)  # a new lifetime: a new NTA
    assert not keeper(t0 + 4001, [], longer).is_negative(name, t0 + 4001)  # unconfigured: gone


def test_a_restart_keeps_each_ntas_expiry_and_one_that_ended_stays_gone(tmp_path: Path) -> None:
    """RFC 7646 §2: an NTA ends, restarts or not. Before, each start renewed every configured
    NTA, so a resolver restarted more often than the lifetime (upgrades, a crash loop) never
    validated the zone again. The RFC 5011 state keeps them: a restart keeps the expiry, an
    NTA that expired or that its re-check dropped stays gone, a changed lifetime renews it."""
    from types import SimpleNamespace

    import dns.name
    import dns.rrset

    from sigchain.clock import FakeClock
    from sigchain.core.validate.verdict import Status
    from sigchain.services.anchors5011 import ManagedAnchors
    from sigchain.services.resolveranchors import AnchorKeeper

    t0 = 1_800_000_000
    broken, fixed = dns.name.from_text("broken.example."), dns.name.from_text("fixed.example.")
    root_ds = dns.rrset.from_text(".", 3600, "IN", "DS", "20326 8 2 " + "e0" * 32)
    state = str(tmp_path / "anchors.state")
    service = SimpleNamespace(worker=0, anchors=None, flush=lambda: None, lookup=lambda name, rdtype, ntas: SimpleNamespace(
        status=Status.SECURE if name == fixed else Status.BOGUS))

    def start(now: int, flags: list[str]) -> AnchorKeeper:
        service.clock = FakeClock(now)
        return AnchorKeeper(service, now, from_flags(negative=flags), None,  # type: ignore[arg-type]
                            ManagedAnchors(state, [root_ds], now))

    both = ["broken.example=1h", "fixed.example=1h"]
    first = start(t0, both)
    assert first.is_negative(broken, t0 + 10) and first.is_negative(fixed, t0 + 10)
    again = start(t0 + 1000, both)  # restarted: the same NTAs, ending when they would have
    assert again.is_negative(broken, t0 + 3599) and not again.is_negative(broken, t0 + 3600)
    service.clock = FakeClock(t0 + 1300)
    again.upkeep()  # the re-check finds fixed.example validating: its NTA goes
    assert not again.is_negative(fixed, t0 + 1300) and again.is_negative(broken, t0 + 1300)
    third = start(t0 + 1400, both)
    assert not third.is_negative(fixed, t0 + 1400) and third.is_negative(broken, t0 + 3599)
    later = start(t0 + 4000, both)  # broken.example expired meanwhile: not renewed either
    assert not later.is_negative(broken, t0 + 4000) and not later.is_negative(fixed, t0 + 4000)
    renewed = start(t0 + 4100, ["broken.example=2h"])  # a new lifetime: a new NTA
    assert renewed.is_negative(broken, t0 + 4100 + 7199) and not renewed.is_negative(fixed, t0 + 4100)
    assert not start(t0 + 4200, []).is_negative(broken, t0 + 4200)  # unconfigured: gone
    # configured again after that: the operator's new NTA (as a SIGHUP would take it)
    assert start(t0 + 4300, ["broken.example=2h"]).is_negative(broken, t0 + 4300 + 7199)
