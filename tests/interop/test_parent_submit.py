"""`sigchain keys submit-ds`: the wanted DS set pushed by a TSIG-signed UPDATE to `named` as the
parent's primary (on 127.61.1.1; dig shows the DS RRset replaced), a REFUSED update reported
with its rcode (exit 3, nothing recorded), and the hook that gets the set on stdin."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigchain.clock import SYSTEM
from sigchain.core.dnssec import timefmt
from tests.conftest import free_port, need, run, sc, terminate
from tests.unit.test_keys_run import FAST

ZONE = "example.test."
HOST = "127.61.1.1"
DAY = 86400
STALE = "example DS 11111 13 2 " + "AB" * 32


def _key(name: str) -> str:
    secret = base64.b64encode(os.urandom(32)).decode()
    return f'key "{name}" {{ algorithm hmac-sha256; secret "{secret}"; }};\n'


@pytest.fixture()
def named(tmp_path: Path) -> Iterator[dict[str, object]]:
    """named, primary for test. (unsigned), updates allowed only with the key "ddns"."""
    folder = tmp_path / "named"
    folder.mkdir()
    (folder / "test.db").write_text(
        f"$TTL 300\n@ SOA ns hm 1 3600 600 86400 300\n@ NS ns\nns A {HOST}\n"
        f"example NS ns.example\nns.example A 127.61.1.9\n{STALE}\n")
    good, other = folder / "ddns.key", folder / "other.key"
    good.write_text(_key("ddns"))
    other.write_text(_key("other"))
    port = free_port(HOST)
    (folder / "named.conf").write_text(f"""{good.read_text()}{other.read_text()}
options {{
  directory "{folder}"; pid-file "{folder}/named.pid"; managed-keys-directory "{folder}";
  session-keyfile "{folder}/session.key";
  listen-on port {port} {{ {HOST}; }}; listen-on-v6 {{ none; }};
  recursion no; dnssec-validation no; notify no;
}};
controls {{ }};
zone "test" {{ type primary; file "test.db"; allow-update {{ key "ddns"; }}; }};
""")
    log = folder / "named.log"
    # named binds only interface addresses: add ours to lo for the test, and remove it after
    have = run([need("ip"), "-o", "-4", "addr", "show", "dev", "lo"], check=True).stdout
    added = f" {HOST}/" not in have
    if added:
        run([need("ip"), "addr", "add", f"{HOST}/32", "dev", "lo"], check=True)
    with open(log, "w") as logf:
        proc = subprocess.Popen([need("named"), "-4", "-g", "-n", "1", "-c",
                                 str(folder / "named.conf")], stdout=logf,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while "running" not in log.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            yield {"server": f"{HOST}#{port}", "port": port, "good": good, "other": other}
        finally:
            terminate(proc)
            if added:
                run([need("ip"), "addr", "del", f"{HOST}/32", "dev", "lo"])


def _dig_ds(port: object) -> list[str]:
    out = run([need("dig"), f"@{HOST}", "-p", str(port), "+tcp", "+norec", "+short",
               ZONE, "DS"], check=True).stdout
    return sorted(" ".join(line.split()[:3]) + " " + "".join(line.split()[3:]).upper()
                  for line in out.splitlines() if line.strip())


def _keys(tmp_path: Path) -> tuple[Path, Path, int, dict]:  # type: ignore[type-arg]
    tmp_path.chmod(0o700)
    kdir, policy = tmp_path / "keys", tmp_path / "fast.toml"
    policy.write_text(FAST)
    t0 = SYSTEM.now()
    for t in (t0, t0 + 3 * DAY):  # the KSK's CDS window opens on the second run
        sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at",
           timefmt.format_timestamp14(t), check=True)
    status = json.loads(sc("keys", "status", ZONE, "--keys", kdir, "--json", "--at",
                           timefmt.format_timestamp14(t0 + 3 * DAY), check=True).stdout)
    ksk = next(k for k in status["keys"] if k["role"] == "ksk")
    return kdir, policy, t0 + 3 * DAY + 60, ksk


def _expected(kdir: Path, ksk: dict) -> list[str]:  # type: ignore[type-arg]
    fields = sc("ds", kdir / f"{ksk['base']}.key", check=True).stdout.split()
    return [f"{fields[3]} {fields[4]} {fields[5]} {''.join(fields[6:])}"]


def test_update_replaces_the_ds_rrset_at_named_and_refused_is_exit_3(
        tmp_path: Path, named: dict[str, object]) -> None:
    kdir, _, t, ksk = _keys(tmp_path)
    at = timefmt.format_timestamp14(t)
    assert _dig_ds(named["port"]) == [f"11111 13 2 {'AB' * 32}"]

    for tsig in (["--tsig", named["other"]], []):  # a key not allowed; no key at all
        refused = sc("keys", "submit-ds", ZONE, "--keys", kdir, "--update", named["server"],
                     *tsig, "--at", at)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert f"answered the UPDATE of {ZONE} DS in test. with REFUSED" in refused.stderr
        assert _dig_ds(named["port"]) == [f"11111 13 2 {'AB' * 32}"]  # nothing changed

    ok = sc("keys", "submit-ds", ZONE, "--keys", kdir, "--update", named["server"], "--tsig",
            named["good"], "--at", at)
    assert ok.returncode == 0, ok.stderr
    assert _dig_ds(named["port"]) == _expected(kdir, ksk)  # the stale DS went, in one UPDATE
    status = json.loads(sc("keys", "status", ZONE, "--keys", kdir, "--json", "--at", at,
                           check=True).stdout)
    assert next(k for k in status["keys"] if k["id"] == ksk["id"])["ds_published"] is None
    assert any(f"waiting for DS of key {ksk['tag']}" in w for w in status["waiting"])


def test_hook_gets_the_ds_set_on_stdin_and_its_exit_status_decides(tmp_path: Path) -> None:
    kdir, _, t, ksk = _keys(tmp_path)
    at = timefmt.format_timestamp14(t)
    got = tmp_path / "got.json"
    hook = f'cat > {got}; echo "$ZONE $ACTION" > {got}.env; printf "%s" "$DS_TEXT" > {got}.txt'
    ok = sc("keys", "submit-ds", ZONE, "--keys", kdir, "--hook", hook, "--at", at)
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(got.read_text())
    line = sc("ds", kdir / f"{ksk['base']}.key", check=True).stdout.strip()
    assert doc["zone"] == ZONE and doc["action"] == "replace" and doc["text"] == line + "\n"
    assert [k["tag"] for k in doc["keys"]] == [int(ksk["tag"])]
    assert Path(f"{got}.env").read_text() == f"{ZONE} replace\n"
    assert Path(f"{got}.txt").read_text() == line
    failed = sc("keys", "submit-ds", ZONE, "--keys", kdir, "--hook",
                "echo registrar said no >&2; exit 7", "--at", at)
    assert failed.returncode == 3 and "hook exited 7: registrar said no" in failed.stderr
    early = sc("keys", "submit-ds", ZONE, "--keys", kdir, "--hook", "true", "--at",
               timefmt.format_timestamp14(t - 3 * DAY))  # no key in its CDS window yet
    assert early.returncode == 4 and "would make the zone insecure" in early.stderr
