"""A reload verifies only the signatures it has not verified before (core/verify/known): the
digest of (key, signature, signed data) of every signature verified at the last load spares
that signature's crypto, never its other checks. An unchanged RRSIG that has expired since,
a damaged RRSIG and changed data under its old RRSIG are refused as without the digests —
both when the file is read whole and when one process reads it in parts (a reload beside
the answering workers, services/partverify `read_and_verify_alone`), whose second reading
refuses a file that changed after the first. A server that let go of the old version once
the new one verified, and then could not index it, reads the file again."""

from __future__ import annotations

import base64
from pathlib import Path

import dns.name
import dns.rdataset
import pytest

from sigchain.clock import FakeClock
from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.dnssec.rrsig import SigWindow
from sigchain.core.serve.acl import Acl
from sigchain.core.sign import signer
from sigchain.core.verify.known import known_set
from sigchain.core.verify.report import VerifyReport
from sigchain.core.zone.nsec3hash import Nsec3Params
from sigchain.edge.server import ListenAddress
from sigchain.errors import InputError
from sigchain.model.keys import KeyPair, KeyRole, KeyTiming
from sigchain.services import partverify, verifying, zonefiles
from sigchain.services.authoritative import AuthoritativeService
from sigchain.services.serveconfig import ListenConfig, ServeConfig, ZoneConfig
from tests.zonetools import sign_text

N = dns.name.from_text
ORIGIN = N("example.test.")
NOW = 1_800_000_000
NAMES = 300
VALID = 86400  # the signatures' validity from NOW - 3600


def _key(role: KeyRole) -> KeyPair:
    a = algorithms.get(13)
    priv = algorithms.generate(a)
    return KeyPair(ORIGIN, 13, keyfile.make_dnskey(a, priv, role.flags), priv, KeyTiming())


@pytest.fixture(scope="module")
def signed() -> str:
    def rds(t: str, *texts: str) -> dns.rdataset.Rdataset:
        return dns.rdataset.from_text("IN", t, 300, *texts)

    nodes = {ORIGIN: [rds("SOA", "ns.example.test. h.example.test. 1 2 3 4 60"),
                      rds("NS", "ns.example.test.")],
             N("ns.example.test."): [rds("A", "192.0.2.1")]}
    for i in range(NAMES):
        nodes[N(f"h{i}.example.test.")] = [rds("A", f"10.0.{i >> 8}.{i & 255}")]
    opts = signer.SignOptions(SigWindow(NOW - 3600, VALID, 0, b"seed"), Nsec3Params())
    return sign_text(nodes, ORIGIN, [_key(KeyRole.KSK), _key(KeyRole.ZSK)], opts, NOW)


def _verify(path: Path, now: int, known: bytes, alone: bool) -> VerifyReport:
    got: list[object] = []
    _zone, report = verifying.Verifier(1).read_and_verify(
        str(path), "example.test.", now, ignore_ksk=True, only_signed=True, served=True,
        sink=got.extend, known=known, alone=0 if alone else None)
    assert report is not None and (got or not alone)
    return report


@pytest.fixture(params=[False, True], ids=["whole", "alone"])
def alone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param:  # a small file read by one process in several parts
        monkeypatch.setattr(verifying, "PARALLEL_READ", 0)
        monkeypatch.setattr(verifying, "ALONE_PART", 8 << 10)
    return bool(request.param)


def _codes(report: VerifyReport) -> set[str]:
    return {f.code for f in report.findings}


def _first_signature(text: str, owner: str) -> tuple[str, str]:
    """The line of `owner`'s RRSIG over its A RRset, and that line with one signature byte
    changed."""
    line = next(x for x in text.splitlines() if x.startswith(owner) and " RRSIG A " in x)
    fields = line.split()
    sig = bytearray(base64.b64decode("".join(fields[fields.index("RRSIG") + 9:])))
    sig[5] ^= 0x01
    head = " ".join(fields[: fields.index("RRSIG") + 9])
    return line, f"{head} {base64.b64encode(bytes(sig)).decode()}"


def test_known_signatures_skip_only_their_crypto(tmp_path: Path, signed: str, alone: bool) -> None:
    path = tmp_path / "z.signed"
    path.write_text(signed)
    first = _verify(path, NOW, b"", alone)
    assert first.findings == [] and first.signatures_known == 0
    assert len(first.verified_digests) == 16 * first.signatures_verified
    again = _verify(path, NOW, first.verified_digests, alone)
    print(f"\n{again.signatures_checked} signatures: {again.signatures_known} known, "
          f"{again.signatures_checked - again.signatures_known} checked by crypto")
    assert again.findings == [] and again.signatures_known == again.signatures_checked
    assert sorted(known_set(again.verified_digests)) == sorted(known_set(first.verified_digests))
    # expired since the last load, unchanged: refused (the window is always checked)
    later = _verify(path, NOW + 2 * VALID, first.verified_digests, alone)
    assert _codes(later) == {"RRSIG_EXPIRED"}


def test_a_damaged_signature_is_refused_though_the_rest_is_known(
        tmp_path: Path, signed: str, alone: bool) -> None:
    path = tmp_path / "z.signed"
    path.write_text(signed)
    known = _verify(path, NOW, b"", alone).verified_digests
    line, damaged = _first_signature(signed, "h7.example.test.")
    path.write_text(signed.replace(line, damaged))
    report = _verify(path, NOW, known, alone)
    assert _codes(report) == {"RRSIG_BAD_SIGNATURE"}
    assert [f.name for f in report.findings] == ["h7.example.test."]
    assert report.signatures_checked - report.signatures_known == 1


def test_changed_data_under_its_old_signature_is_refused(
        tmp_path: Path, signed: str, alone: bool) -> None:
    path = tmp_path / "z.signed"
    path.write_text(signed)
    known = _verify(path, NOW, b"", alone).verified_digests
    old = next(x for x in signed.splitlines() if x.startswith("h9.example.test.") and " A " in x
               and "RRSIG" not in x)
    path.write_text(signed.replace(old, old.replace("10.0.0.9", "10.99.0.9")))
    report = _verify(path, NOW, known, alone)
    assert _codes(report) == {"RRSIG_BAD_SIGNATURE"}
    assert [f.name for f in report.findings] == ["h9.example.test."]


def test_a_file_changed_between_the_two_readings_is_refused(
        tmp_path: Path, signed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index is built from a second reading of the parts; a part whose bytes are not
    those verified is refused (the file is not loaded; the next reload reads it again)."""
    monkeypatch.setattr(verifying, "PARALLEL_READ", 0)
    monkeypatch.setattr(verifying, "ALONE_PART", 8 << 10)
    path = tmp_path / "z.signed"
    path.write_text(signed)
    line, damaged = _first_signature(signed, "h7.example.test.")
    real = partverify._one

    def damage_before_second(target: object, *args: object) -> object:
        if target is partverify._alone_served:
            path.write_text(signed.replace(line, damaged))  # same size, other bytes
        return real(target, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(partverify, "_one", damage_before_second)
    with pytest.raises(InputError, match="changed while it was read"):
        _verify(path, NOW, b"", True)


def _service(tmp_path: Path, signed: str) -> tuple[AuthoritativeService, Path]:
    """A server that has loaded the signed zone, as if UDP workers answered (none is started:
    its reloads then let go of the old version before indexing the new one)."""
    live = tmp_path / "z.signed"
    live.write_text(signed)
    config = ServeConfig((ZoneConfig(ORIGIN, str(live), Acl.parse([])),),
                         (ListenConfig(ListenAddress("127.0.0.1", 5300), (ORIGIN,)),))
    service = AuthoritativeService(config, clock=FakeClock(NOW))
    service.load_all()
    service._workers.count = 2
    live.write_text(signed + "; touched: new content, the same zone\n")
    return service, live


def _failing(service: AuthoritativeService, times: int) -> tuple[object, list[bool]]:
    """`load_checked` that, its first `times` calls, lets the old version go (as once the
    new one has verified) and then fails (as when the file changed between the readings)."""
    real = zonefiles.load_checked
    calls: list[bool] = []

    def load(spec: ZoneConfig, now: int, force: bool, known: bytes, alone: int | None,
             verified: object = None) -> object:
        calls.append(verified is not None)
        got = real(spec, now, force, known, None)
        if len(calls) <= times:
            if callable(verified):
                verified(got[2])
                assert ORIGIN not in service.indexes  # let go of
            raise InputError("z.signed changed while it was read: not loaded (reload again)")
        return got

    return load, calls


@pytest.mark.parametrize("failures", [1, 2])
def test_a_reload_failing_after_the_old_version_was_let_go_reads_the_file_again(
        tmp_path: Path, signed: str, monkeypatch: pytest.MonkeyPatch, failures: int) -> None:
    """Read again at once: served when that works; else the error says what it means."""
    service, _live = _service(tmp_path, signed)
    load, calls = _failing(service, failures)
    monkeypatch.setattr(zonefiles, "load_checked", load)
    outcome, _ = service._reload()
    assert calls == [True, False]
    if failures == 1:
        assert outcome == {"example.test.": "serial 1"}
        assert service.indexes[ORIGIN].serial == 1
    else:
        assert outcome["example.test."].startswith("failed: ")
        assert "a worker restarted meanwhile would not serve the zone" in outcome["example.test."]
        assert ORIGIN not in service.indexes


@pytest.mark.parametrize("in_place", [False, True])
def test_a_reload_failing_after_the_old_version_was_let_go_serves_the_old_version_again(
        tmp_path: Path, signed: str, monkeypatch: pytest.MonkeyPatch, in_place: bool) -> None:
    """The file of the version served is held open: when the reload that let it go fails,
    that version is read back from it — though the path now names a new file (a rename, as
    `sigchain sign` writes) — and the reload fails as any other, the old version served. A
    file rewritten in place cannot be read back: the new one is read again instead (failing
    here too: the error says what that means)."""
    monkeypatch.setattr(verifying, "PARALLEL_READ", 0)
    live = tmp_path / "z.signed"
    live.write_text(signed)
    config = ServeConfig((ZoneConfig(ORIGIN, str(live), Acl.parse([])),),
                         (ListenConfig(ListenAddress("127.0.0.1", 5300), (ORIGIN,)),))
    service = AuthoritativeService(config, clock=FakeClock(NOW))
    service._workers.count = 2
    service.load_all()
    assert ORIGIN in service._held
    newer = signed + "; touched: new content, the same zone\n"
    if in_place:
        live.write_text(newer)
    else:
        (tmp_path / "next").write_text(newer)
        (tmp_path / "next").rename(live)
    load, calls = _failing(service, 2 if in_place else 1)
    monkeypatch.setattr(zonefiles, "load_checked", load)
    outcome, _ = service._reload()
    assert calls == [True, False]
    if in_place:
        assert "a worker restarted meanwhile would not serve the zone" in outcome["example.test."]
        assert ORIGIN not in service.indexes
    else:
        assert outcome == {"example.test.": "failed: z.signed changed while it was read: not "
                                            "loaded (reload again)"}
        assert service.indexes[ORIGIN].serial == 1  # the old version, read back and served


def test_workers_keep_a_zone_let_go_of_while_other_zones_are_patched(
        tmp_path: Path, signed: str) -> None:
    """While a reload has let go of a zone's old version, an inline zone's change is still
    sent to the workers as patches (they keep serving their copy of the zone being reloaded);
    a zone missing for any other reason, or back with a new version, has them forked anew."""
    service, _live = _service(tmp_path, signed)
    service._synced = service._synced_now()
    assert service._worker_message() == []  # nothing changed
    kept = service.indexes.pop(ORIGIN)
    assert service._worker_message() is None  # gone: fork (the workers must not keep it)
    service.let_go.add(ORIGIN)
    assert service._worker_message() == []  # let go of during a reload: the workers keep it
    service.indexes[ORIGIN] = kept.patched([], [])  # the reload's new version
    assert service._worker_message() is None


@pytest.mark.parametrize("parts", [False, True], ids=["whole", "parts"])
def test_a_one_off_check_collects_no_digests(tmp_path: Path, signed: str, parts: bool,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `learn` (`sigchain verify`, sign's check before writing: no next load to
    give them to) the report is the same but for the digests, in parts or whole."""
    if parts:
        monkeypatch.setattr(verifying, "PARALLEL_READ", 0)
    line, damaged = _first_signature(signed, "h7.example.test.")
    path = tmp_path / "z.signed"
    path.write_text(signed.replace(line, damaged))
    with verifying.Verifier(2) as v:
        _, kept = v.read_and_verify(str(path), "example.test.", NOW, True, records=False)
        _, lean = v.read_and_verify(str(path), "example.test.", NOW, True, records=False, learn=False)
    assert kept is not None and lean is not None
    assert len(kept.verified_digests) == 16 * kept.signatures_verified and lean.verified_digests == b""
    assert _codes(lean) == {"RRSIG_BAD_SIGNATURE"} and lean.findings == kept.findings
    counts = ("rrsets_checked", "signatures_checked", "signatures_verified", "signatures_valid")
    assert [getattr(lean, c) for c in counts] == [getattr(kept, c) for c in counts]
