"""`keys import-bind` on a key directory BIND 9.18's dnssec-policy made: named (on 127.56.0.1)
makes the keys, `rndc dnssec -rollover` starts a ZSK roll, and after the import `keys status`
shows the states `rndc dnssec -status` shows; runs then continue the roll at BIND's times (the
old ZSK retired at its .state's Retired, removed by its Removed; no new key)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from calendar import timegm
from pathlib import Path

from tests.conftest import free_port, need, sc, terminate

HOST = "127.56.0.1"
RNDC_PORT = 9953
ZONE = "example.test."
POLICY_CONF = """
dnssec-policy "fast" {
  dnskey-ttl 3600; publish-safety 60; retire-safety 60; purge-keys 0;
  max-zone-ttl 600; zone-propagation-delay 60; parent-ds-ttl 3600;
  parent-propagation-delay 60; signatures-refresh 1d; signatures-validity 3d;
  signatures-validity-dnskey 3d;
  keys { ksk lifetime unlimited algorithm 13; zsk lifetime P30D algorithm 13; };
};"""
POLICY_TOML = """dnskey-ttl = "1h"
publish-safety = "1m"
retire-safety = "1m"
purge-keys = 0
max-zone-ttl = "10m"
zone-propagation-delay = "1m"
parent-ds-ttl = "1h"
parent-propagation-delay = "1m"
signatures-refresh = "1d"
signatures-validity = "3d"
signatures-validity-dnskey = "3d"
[[keys]]
role = "ksk"
lifetime = "unlimited"
[[keys]]
role = "zsk"
lifetime = "30d"
"""
# rndc dnssec -status's lines → our state names.
RNDC_RECORDS = {"dnskey": "dnskey", "ds": "ds", "key rrsig": "krrsig", "zone rrsig": "zrrsig"}


def _wait(predicate, what: str, log: Path, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"named: {what} did not happen:\n{log.read_text()}")
        time.sleep(0.1)


def _rndc_status(text: str) -> tuple[int, dict[str, dict[str, str]]]:
    """The `current time` and per key tag: role, goal and record states."""
    when = re.search(r"current time:\s+(.+)", text)
    assert when, text
    now = timegm(time.strptime(when.group(1).strip(), "%a %b %d %H:%M:%S %Y"))
    keys: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"key: (\d+) \(\w+\), (\w+)", line)
        if m:
            current = keys.setdefault(m.group(1), {"role": m.group(2).lower()})
        m = re.match(r"\s+- ([a-z ]+):\s+(\w+)", line)
        if m and current is not None:
            name = "goal" if m.group(1) == "goal" else RNDC_RECORDS[m.group(1)]
            current[name] = m.group(2)
    return now, keys


def test_import_bind_shows_rndc_states_and_continues_the_roll(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    (tmp_path / "example.test.db").write_text(
        "$TTL 600\n@ SOA ns hm 1 3600 600 86400 600\n@ NS ns\nns A 192.0.2.1\n")
    secret = base64.b64encode(os.urandom(32)).decode()
    key = f'key "rndc-key" {{ algorithm hmac-sha256; secret "{secret}"; }};'
    (tmp_path / "named.conf").write_text(f"""{key}
controls {{ inet {HOST} port {RNDC_PORT} allow {{ 127.0.0.0/8; }} keys {{ "rndc-key"; }}; }};
options {{
  directory "{tmp_path}"; pid-file "{tmp_path}/named.pid"; managed-keys-directory "{tmp_path}";
  session-keyfile "{tmp_path}/session.key";
  listen-on port {free_port(HOST)} {{ {HOST}; }}; listen-on-v6 {{ none; }};
  recursion no; dnssec-validation no; notify no;
}};
{POLICY_CONF}
zone "example.test" {{ type primary; file "example.test.db"; dnssec-policy "fast";
  inline-signing yes; }};
""")
    (tmp_path / "rndc.conf").write_text(f"""{key}
options {{ default-key "rndc-key"; default-server {HOST}; default-port {RNDC_PORT}; }};
""")
    log = tmp_path / "named.log"
    for flags in (["-f", "KSK"], []):  # keys in use for two days: BIND finds them omnipresent
        subprocess.run([need("dnssec-keygen"), "-q", "-a", "13", *flags, "-L", "3600", "-P",
                        "-2d", "-A", "-2d", "-K", str(tmp_path), "example.test"], check=True,
                       capture_output=True)

    def rndc(*args: str) -> str:
        out = subprocess.run([need("rndc"), "-c", str(tmp_path / "rndc.conf"), *args],
                             capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    with open(log, "w") as logf:
        named = subprocess.Popen([need("named"), "-g", "-n", "1", "-c",
                                  str(tmp_path / "named.conf")], stdout=logf,
                                 stderr=subprocess.STDOUT)
        try:
            _wait(lambda: len(list(tmp_path.glob("K*.state"))) == 2, "key generation", log)
            _wait(lambda: "ZSK" in rndc("dnssec", "-status", "example.test"), "status", log)
            _, before = _rndc_status(rndc("dnssec", "-status", "example.test"))
            zsk = next(tag for tag, k in before.items() if k["role"] == "zsk")
            rndc("dnssec", "-rollover", "-key", zsk, "example.test")
            _wait(lambda: len(list(tmp_path.glob("K*.state"))) == 3, "the ZSK successor", log)
            _wait(lambda: len(_rndc_status(rndc("dnssec", "-status", "example.test"))[1]) == 3,
                  "the successor in status", log)
            now, bind = _rndc_status(rndc("dnssec", "-status", "example.test"))
            (tmp_path / "fast.toml").write_text(POLICY_TOML)
            sc("keys", "import-bind", tmp_path, "--policy", tmp_path / "fast.toml",
               "--at", now, check=True)
        finally:
            terminate(named)
    ours = json.loads(sc("keys", "status", ZONE, "--keys", tmp_path, "--at", now, "--json",
                         check=True).stdout)
    assert {str(k["tag"]) for k in ours["keys"]} == set(bind)
    for k in ours["keys"]:
        theirs = bind[str(k["tag"])]
        mine = {"role": k["role"], "goal": k["goal"]} | {
            r: k["states"][r] for r in theirs if r not in ("role", "goal")}
        if theirs.get("ds") == "rumoured":
            # BIND has asked for the DS (CDS out) and not seen it at the parent (no DSPublish:
            # this named has no parental-agents). Ours is hidden until it is seen: the roll
            # waits for that observation instead of taking the DS as published.
            assert mine.pop("ds") == "hidden" and k["ds_published"] is None, k
            theirs = {r: v for r, v in theirs.items() if r != "ds"}
        assert mine == theirs, (k["tag"], mine, theirs)
    successor = next(k for k in ours["keys"] if k["predecessor"] == zsk)
    assert successor["role"] == "zsk"
    run = json.loads(sc("keys", "run", ZONE, "--policy", tmp_path / "fast.toml", "--keys",
                        tmp_path, "--at", now, "--json", check=True).stdout)
    assert run["created"] == []  # BIND's roll goes on: no second successor
    later = json.loads(sc("keys", "status", ZONE, "--keys", tmp_path, "--at", now + 4 * 86400,
                          "--json", check=True).stdout)
    new = next(k for k in later["keys"] if k["tag"] == successor["tag"])
    assert new["states"]["dnskey"] == "omnipresent" and new["goal"] == "omnipresent"
    # The roll goes on at BIND's times: the old ZSK retires when BIND's .state says, and is
    # removed once its signatures are out of every cache (at the latest when BIND would).
    # BIND times the retirement from the rollover command, ours from the successor's Published
    # time, which BIND may stamp a second later: each step two seconds late is on time.
    retired, removed = (_state_time(tmp_path, zsk, what) for what in ("Retired", "Removed"))
    kinds = []
    for at in (retired - 2, retired + 2, removed + 2):
        step = json.loads(sc("keys", "run", ZONE, "--policy", tmp_path / "fast.toml", "--keys",
                             tmp_path, "--at", at, "--json", check=True).stdout)
        assert step["created"] == []
        kinds.append(sorted((a["kind"], str(a["key"])) for a in step["actions"]))
    assert kinds[0] == [] and ("retire", zsk) in kinds[1], kinds
    assert ("remove", zsk) in kinds[1] + kinds[2], kinds
    final = json.loads(sc("keys", "status", ZONE, "--keys", tmp_path, "--at", removed + 86400,
                          "--json", check=True).stdout)
    old = next(k for k in final["keys"] if str(k["tag"]) == zsk)
    assert set(old["states"].values()) == {"hidden"}


def _state_time(directory: Path, tag: str, label: str) -> int:
    """A time from BIND's .state file of key `tag` (`Retired: 20261208035850 (...)`)."""
    (path,) = directory.glob(f"K*+{int(tag):05d}.state")
    m = re.search(rf"^{label}: (\d{{14}})", path.read_text(), re.M)
    assert m, path.read_text()
    return timegm(time.strptime(m.group(1), "%Y%m%d%H%M%S"))
