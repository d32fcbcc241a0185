"""`sigchain keys checkds`: the parent zone served by `sigchain serve` on 127.61.0.1 and
127.61.0.2, one with the new DS and one stale; a KSK roll run by `keys run` waits while they
disagree and goes on once every parent server has the new DS."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest
from dns.rdataclass import IN
from dns.rdatatype import RRSIG

from sigchain.clock import SYSTEM
from sigchain.core.dnssec import timefmt
from tests.conftest import EXAMPLE_ZONE, free_port, need, run, sc, sigchain_cmd, terminate
from tests.unit.test_keys_run import FAST  # the fast policy the key tests share
from tests.zonetools import keygen

ZONE = "example.test."
PARENT = "test."
A, B = "127.61.0.1", "127.61.0.2"
DAY = 86400


class Parent:
    """`sigchain serve` of the parent zone on one address; `serve(ds_lines)` (re)starts it
    with the zone signed carrying those DS records for the child."""

    def __init__(self, folder: Path, host: str, pkeys: Path):
        self.folder, self.host, self.pkeys = folder, host, pkeys
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def serve(self, ds_lines: list[str], port: int | None = None,
              zone: str = PARENT, head: str = "") -> str:
        self.stop()
        text = (f"$ORIGIN {zone}\n$TTL 300\n@ SOA ns hm 1 3600 600 86400 300\n"
                + (head or f"@ NS ns\nns A {A}\nexample NS ns.example\nns.example A 127.61.0.9\n")
                + "".join(line + "\n" for line in ds_lines))
        unsigned = self.folder / f"parent-{self.host}.zone"
        unsigned.write_text(text)
        signed = self.folder / f"parent-{self.host}.signed"
        # signatures valid from 8 days back: checks run --at days before or after now
        sc("sign", unsigned, "--keys", self.pkeys, "-o", signed, "--inception", "now-8d",
           "--validity", "30d", check=True)
        self.port = port or free_port(self.host)
        log = self.folder / f"serve-{self.host}-{self.port}.log"
        self.proc = subprocess.Popen(
            [*sigchain_cmd(), "serve", "--zone", f"{zone}={signed}", "--listen",
             f"{self.host}#{self.port}", "--udp-workers", "1"],
            stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "ready:" not in log.read_text():
            assert self.proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        return f"{self.host}#{self.port}"

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None


@pytest.fixture()
def parents(tmp_path: Path) -> Iterator[tuple[Parent, Parent, Path]]:
    pkeys = tmp_path / "pkeys"
    ksk = keygen(pkeys, PARENT, "ksk")
    keygen(pkeys, PARENT, "zsk")
    anchor = tmp_path / "anchor.txt"
    anchor.write_text(sc("ds", pkeys / f"{ksk}.key", check=True).stdout)
    both = Parent(tmp_path, A, pkeys), Parent(tmp_path, B, pkeys)
    yield both[0], both[1], anchor
    for p in both:
        p.stop()


def _at(t: int) -> str:
    return timefmt.format_timestamp14(t)


def _ds(kdir: Path, base: str) -> str:
    return sc("ds", kdir / f"{base}.key", check=True).stdout.strip()


def _status(kdir: Path, t: int) -> dict:  # type: ignore[type-arg]
    return json.loads(sc("keys", "status", ZONE, "--keys", kdir, "--at", _at(t), "--json",
                         check=True).stdout)


def test_ksk_roll_waits_while_a_parent_server_is_stale(
        tmp_path: Path, parents: tuple[Parent, Parent, Path]) -> None:
    a, b, anchor = parents
    tmp_path.chmod(0o700)
    kdir, policy = tmp_path / "keys", tmp_path / "fast.toml"
    policy.write_text(FAST)
    t0 = SYSTEM.now()

    def run(t: int) -> dict:  # type: ignore[type-arg]
        return json.loads(sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at",
                             _at(t), "--json", check=True).stdout)

    def checkds(t: int, *servers: str) -> subprocess.CompletedProcess[str]:
        args = [a for s in servers for a in ("--parent-server", s)]
        return sc("keys", "checkds", ZONE, "--keys", kdir, "--anchor", anchor, "--at", _at(t),
                  *args)

    run(t0)
    run(t0 + 3 * DAY)
    old = next(k for k in _status(kdir, t0 + 3 * DAY)["keys"] if k["role"] == "ksk")
    servers = [a.serve([_ds(kdir, old["base"])]), b.serve([_ds(kdir, old["base"])])]
    wrong = tmp_path / "wrong.anchor"  # an anchor the parent's keys do not match
    wrong.write_text(f"{PARENT} IN DS 1 13 2 {'AB' * 32}\n")
    bogus = sc("keys", "checkds", ZONE, "--keys", kdir, "--anchor", wrong, "--parent-server",
               servers[0], "--at", _at(t0 + 3 * DAY + 60))
    assert bogus.returncode == 1 and "recorded" not in bogus.stdout
    assert f"parent server {servers[0]}: DS answer is bogus" in bogus.stderr
    first = checkds(t0 + 3 * DAY + 3600, *servers)
    assert first.returncode == 0, first.stderr
    assert f"key {old['tag']}: DS at every parent server since" in first.stdout
    run(t0 + 4 * DAY)
    assert next(k for k in _status(kdir, t0 + 4 * DAY)["keys"]
                if k["id"] == old["id"])["states"]["ds"] == "omnipresent"

    sc("keys", "roll", ZONE, "--key", old["tag"], "--keys", kdir, "--at", _at(t0 + 4 * DAY),
       check=True)
    run(t0 + 4 * DAY)
    new = next(k for k in _status(kdir, t0 + 4 * DAY)["keys"] if k["predecessor"] == old["id"])
    both = [_ds(kdir, old["base"]), _ds(kdir, new["base"])]
    servers = [a.serve(both), b.serve([_ds(kdir, old["base"])])]  # B is stale
    stale = checkds(t0 + 4 * DAY + 3600, *servers)
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert (f"warning: zone {ZONE}: parent servers disagree on the DS of key {new['tag']}: "
            f"at {servers[0]}; not at {servers[1]}") in stale.stderr
    later = run(t0 + 6 * DAY)  # days later: time alone does not move the roll
    assert [w["kind"] for w in later["waiting"]] == ["await-ds"]
    assert later["waiting"][0]["key"] == new["id"] and later["actions"] == []
    assert any(f"waiting for DS of key {new['tag']}" in w
               for w in _status(kdir, t0 + 6 * DAY)["waiting"])

    servers[1] = b.serve(both)
    assert checkds(t0 + 6 * DAY + 60, *servers).returncode == 0  # first seen everywhere
    closed = f"127.61.0.3#{free_port('127.61.0.3')}"  # a parent server that does not answer
    failing = checkds(t0 + 6 * DAY + 1800, *servers, closed)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert f"zone {ZONE}: DS of key {new['tag']} unknown at {closed}" in failing.stderr
    assert f"key {new['tag']}: DS unknown" in failing.stdout and "time reset" in failing.stdout
    agreed = checkds(t0 + 6 * DAY + 3600, *servers)  # seen again: since now, not before
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert f"key {new['tag']}: DS at every parent server since " \
           f"{timefmt.format_utc(t0 + 6 * DAY + 3600)}; recorded (ds-published)" in agreed.stdout
    done = run(t0 + 7 * DAY)
    kinds = {(x["kind"], x["key"]) for x in done["actions"]}
    assert {("ds-seen", new["id"]), ("publish", new["id"]), ("remove", old["id"]),
            ("activate", new["id"])} <= kinds
    assert done["waiting"] == []


def test_parent_servers_found_from_root_hints_and_validated_from_the_root(
        tmp_path: Path, parents: tuple[Parent, Parent, Path]) -> None:
    """Without --parent-server: the parent's servers are those the root's referral names (on
    port 53 of 127.61.0.1/.2), and each DS answer validates from the root's anchor."""
    a, b, parent_anchor = parents
    tmp_path.chmod(0o700)
    kdir, policy = tmp_path / "keys", tmp_path / "fast.toml"
    policy.write_text(FAST)
    t0 = SYSTEM.now()
    for t in (t0, t0 + 3 * DAY):
        sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at", _at(t), check=True)
    ksk = next(k for k in _status(kdir, t0 + 3 * DAY)["keys"] if k["role"] == "ksk")
    head = (f"@ NS ns1\n@ NS ns2\nns1 A {A}\nns2 A {B}\n"
            "example NS ns.example\nns.example A 127.61.0.9\n")
    for p in (a, b):
        p.serve([_ds(kdir, ksk["base"])], port=53, head=head)
    rkeys = tmp_path / "rkeys"
    rksk = keygen(rkeys, ".", "ksk")
    keygen(rkeys, ".", "zsk")
    root = Parent(tmp_path, "127.61.0.10", rkeys)
    try:
        parent_ds = [line for line in parent_anchor.read_text().splitlines() if line.strip()]
        root.serve(parent_ds, port=53, zone=".", head=(
            "@ NS a.root-servers.\na.root-servers. A 127.61.0.10\n"
            f"test. NS ns1.test.\ntest. NS ns2.test.\nns1.test. A {A}\nns2.test. A {B}\n"))
        hints = tmp_path / "root.hints"
        hints.write_text(". NS a.root-servers.\na.root-servers. A 127.61.0.10\n")
        anchor = tmp_path / "root.anchor"
        anchor.write_text(sc("ds", rkeys / f"{rksk}.key", check=True).stdout)
        out = sc("keys", "checkds", ZONE, "--keys", kdir, "--root-hints", hints, "--anchor",
                 anchor, "--at", _at(t0 + 3 * DAY + 60), "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        data = json.loads(out.stdout)
        assert data["parent"] == PARENT and data["agree"] is True
        assert [s["server"] for s in data["servers"]] == [A, B]
        assert data["recorded"] == [{"key": ksk["id"], "observation": "ds-published",
                                     "since": t0 + 3 * DAY + 60}]
    finally:
        root.stop()


def test_going_insecure_publishes_the_delete_form_and_waits_for_the_parent(
        tmp_path: Path, parents: tuple[Parent, Parent, Path]) -> None:
    """A policy with `insecure = true`: the signer publishes CDS/CDNSKEY's delete form (signed
    by the KSK; dnssec-verify accepts the zone), status says what it waits for, the hook gets
    the empty set, and once every parent server has dropped the DS the keys go."""
    a, b, anchor = parents
    tmp_path.chmod(0o700)
    kdir, policy, off = tmp_path / "keys", tmp_path / "fast.toml", tmp_path / "off.toml"
    policy.write_text(FAST)
    off.write_text("insecure = true\n" + FAST)
    now = SYSTEM.now()
    t0 = now - 6 * DAY
    for t in (t0, t0 + 3 * DAY):
        sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at", _at(t), check=True)
    ksk = next(k for k in _status(kdir, t0 + 3 * DAY)["keys"] if k["role"] == "ksk")
    servers = [p.serve([_ds(kdir, ksk["base"])]) for p in (a, b)]
    args = [x for s in servers for x in ("--parent-server", s)]
    sc("keys", "checkds", ZONE, "--keys", kdir, "--anchor", anchor, *args, "--at",
       _at(t0 + 3 * DAY + 60), check=True)
    sc("keys", "run", ZONE, "--policy", policy, "--keys", kdir, "--at", _at(t0 + 4 * DAY),
       check=True)

    sc("keys", "run", ZONE, "--policy", off, "--keys", kdir, "--at", _at(now), check=True)
    status = _status(kdir, now)
    assert any(f"DS of key {ksk['tag']} to leave the parent (going insecure" in w
               for w in status["waiting"])
    signed, unsigned = tmp_path / "example.test.signed", tmp_path / "example.test.zone"
    # TTLs within the fast policy's max-zone-ttl, or sign refuses the zone (as BIND would)
    unsigned.write_text(EXAMPLE_ZONE.read_text().replace("$TTL 3600", "$TTL 300"))
    sc("sign", unsigned, "--keys", kdir, "-o", signed, check=True)
    apex = dns.zone.from_file(str(signed), ZONE, relativize=False).get_node(ZONE)
    assert apex is not None
    for rdtype, delete in (("CDS", "0 0 0 00"), ("CDNSKEY", "0 3 0 AA==")):
        rds = apex.get_rdataset(IN, dns.rdatatype.from_text(rdtype))
        assert rds is not None and [rd.to_text() for rd in rds] == [delete]
        sigs = apex.get_rdataset(IN, RRSIG, dns.rdatatype.from_text(rdtype))
        assert sigs is not None
        assert {rd.key_tag for rd in sigs} == {int(ksk["tag"])}  # signed by the KSK
    verified = run([need("dnssec-verify"), "-o", ZONE, str(signed)])
    assert verified.returncode == 0, verified.stdout + verified.stderr

    got = tmp_path / "hook.json"
    sc("keys", "submit-ds", ZONE, "--keys", kdir, "--hook", f"cat > {got}", "--at",
       _at(now), check=True)
    assert json.loads(got.read_text())["action"] == "delete"
    servers = [p.serve([]) for p in (a, b)]
    args = [x for s in servers for x in ("--parent-server", s)]
    gone = sc("keys", "checkds", ZONE, "--keys", kdir, "--anchor", anchor, *args, "--at",
              _at(now + 60), "--json")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert json.loads(gone.stdout)["recorded"] == [
        {"key": ksk["id"], "observation": "ds-withdrawn", "since": now + 60}]
    done = json.loads(sc("keys", "run", ZONE, "--policy", off, "--keys", kdir, "--at",
                         _at(now + DAY), "--json", check=True).stdout)
    assert {a["kind"] for a in done["actions"]} == {"ds-gone", "retire", "remove"}
    assert done["waiting"] == []
