"""Bad key directories and policy files for `sigchain keys`: exit 2 naming the file, line and
problem, and nothing written (no key state change, no key file left behind)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import sc
from tests.unit.test_keys_run import T0, ZONE, _at, _kdir
from tests.zonetools import BIND_CSK_STATE

DAY = 86400


def _data(d: Path) -> dict[str, bytes]:
    """Every file under `d` but the lock file (which only serialises runs)."""
    return {str(p): p.read_bytes() for p in d.rglob("*")
            if p.is_file() and not p.name.endswith(".lock")}


def _first(kdir: Path, ext: str) -> Path:
    return sorted(kdir.glob(f"*{ext}"))[0]


def _garbage_key(tmp: Path, kdir: Path) -> str:
    _first(kdir, ".key").write_text("garbage here\n")
    return "ksk-zsk"


def _wrong_owner(tmp: Path, kdir: Path) -> str:
    other = tmp / "other"
    sc("keygen", "other.test.", "--role", "zsk", "--dir", other, check=True)
    for f in other.iterdir():
        target = kdir / f.name.replace("other.test.", ZONE)
        shutil.copy(f, target)
        target.chmod(0o600)
    return "ksk-zsk"


def _policy(text: str) -> Callable[[Path, Path], str]:
    def write(tmp: Path, kdir: Path) -> str:
        (tmp / "p.toml").write_text(text)
        return str(tmp / "p.toml")
    return write


@pytest.mark.parametrize(("mutate", "expect"), [
    (_garbage_key, "+013+{tag}.key:1: expected a DNSKEY record"),
    (_wrong_owner, ".key:5: key file is named for example.test. but its DNSKEY belongs to "
                   "other.test."),
    (_policy('[[keys]]\nrole = "csk"\nstore = "hsm:x"\n'),
     "p.toml:3: keys[0].store: key store 'hsm:x' is not supported"),
    (_policy('[[keys]]\nrole = "ksk"\nalgorithm = 15\n[[keys]]\nrole = "zsk"\nalgorithm = 15\n'
             'store = "pkcs11:nonsense"\n'),
     "p.toml:7: keys[1].store: bad PKCS#11 URI: unknown attribute 'nonsense'"),
    (_policy("keys = []\n"), "p.toml:1: keys: no ksk or csk: nothing signs the DNSKEY RRset"),
    (_policy('[[keys]]\nrole = "csk"\n[[keys]]\nrole = "zsk"\nalgorithm = 15\n'),
     "p.toml:1: keys: algorithm 15 has only a zsk"),
], ids=["garbage-key", "wrong-owner", "store", "pkcs11-uri", "no-keys", "half-algorithm"])
def test_keys_run_refuses_bad_input_and_writes_nothing(
        tmp_path: Path, mutate: Callable[[Path, Path], str], expect: str) -> None:
    kdir = _kdir(tmp_path)
    ran = json.loads(sc("keys", "run", ZONE, "--policy", "ksk-zsk", "--keys", kdir, "--at",
                        _at(T0), "--json", check=True).stdout)
    source = mutate(tmp_path, kdir)
    tag = f"{_first(kdir, '.key').name.rsplit('+', 1)[1][:-4]}"
    before = _data(tmp_path)
    out = sc("keys", "run", ZONE, "--policy", source, "--keys", kdir, "--at",
             _at(T0 + 30 * DAY))
    assert out.returncode == 2, out.stderr
    assert expect.format(tag=tag) in out.stderr and "Traceback" not in out.stderr
    assert _data(tmp_path) == before
    assert ran["created"]  # the first run made the keys the bad one must leave alone


STATE = BIND_CSK_STATE


@pytest.mark.parametrize(("change", "expect"), [
    (("Lifetime: 0", "Lifetime: forever"), ":4: Lifetime: expected a number, not 'forever'"),
    (("Algorithm: 13", "Algorithm: ecdsa"), ":2: Algorithm: expected a number, not 'ecdsa'"),
    (("KSK: yes", "KSK: perhaps"), ":5: KSK: expected yes or no, not 'perhaps'"),
    (("Algorithm: 13", "Algorithm: 8"), ":2: Algorithm: algorithm or role differs"),
], ids=["lifetime", "algorithm", "ksk", "mismatch"])
def test_import_bind_names_the_state_file_line(tmp_path: Path, change: tuple[str, str],
                                               expect: str) -> None:
    kdir = _kdir(tmp_path)
    made = json.loads(sc("keygen", ZONE, "--role", "csk", "--dir", kdir, "--json",
                         check=True).stdout)
    state = kdir / f"{os.path.basename(made['base'])}.state"
    state.write_text(STATE.replace(*change))
    before = _data(tmp_path)
    out = sc("keys", "import-bind", kdir, "--policy", "default", "--at", _at(T0 + 4 * DAY))
    assert out.returncode == 2 and f"{state}{expect}" in out.stderr, out.stderr
    assert _data(tmp_path) == before
