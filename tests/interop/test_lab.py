"""`sigchain lab` end to end, as root, on 127.53.x port 53: real Unbound and named validate
the lab's hierarchy with delv and dig as the judges; status, reuse, re-signing, --fresh,
down, and the failures that must leave nothing behind.

One lab serves the whole module and is changed step by step, so the tests run in file order
(pytest's default). The module's teardown always runs `lab down`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigchain.core.lab import hierarchy
from sigchain.edge import keystore, loopback, processes
from sigchain.errors import OperationalError
from sigchain.services.lab import Lab
from tests.conftest import need, run, sc

UNBOUND = hierarchy.RESOLVERS["unbound"]
NAMED = hierarchy.RESOLVERS["named"]
SIGCHAIN = hierarchy.SIGCHAIN_RESOLVER[1]  # sigchain's own resolver, beside Unbound or named
LAB_ADDRESSES = set(hierarchy.server_addresses()) | set(hierarchy.RESOLVERS.values()) | {SIGCHAIN}


def lo() -> set[str]:
    """The lab's range on lo (127.53.0.0/16); other tests may add their own ranges meanwhile."""
    return {a for a in loopback.addresses() if ipaddress.ip_address(a) in hierarchy.LAB_NET}


class LabDir:
    """The module's lab: its directory and what lo looked like before it came up."""

    def __init__(self, path: Path, before: set[str]):
        self.path = path
        self.before = before

    def up(self, *args: str) -> dict:
        proc = sc("lab", "up", "--dir", self.path, "--json", *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(proc.stdout)

    def state(self) -> dict:
        return json.loads((self.path / "lab.json").read_text())

    def state_zones(self) -> list[dict]:
        return [{"zone": k, **v} for k, v in self.state()["zones"].items()]

    def anchor(self) -> str:
        return (self.path / "anchor.ds").read_text()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabDir]:
    if os.geteuid() != 0:
        pytest.fail("the lab tests run as root (port 53, addresses on lo): run bash dev/test as root")
    for tool in ("dig", "delv", "unbound", "unbound-control", "named"):
        need(tool)
    before = lo()
    assert not before & LAB_ADDRESSES, f"lab addresses already on lo before the test: {before}"
    d = LabDir(tmp_path_factory.mktemp("lab"), before)
    started = time.monotonic()
    proc = sc("lab", "up", "--dir", d.path)
    d.up_seconds = time.monotonic() - started  # type: ignore[attr-defined]
    d.up_text = proc.stdout  # type: ignore[attr-defined]
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield d
    finally:
        sc("lab", "down", "--dir", d.path)
        # Whatever happened, leave no lab address behind on this machine.
        for a in lo() & LAB_ADDRESSES - before:
            loopback.remove(a)


def ip_literals(text: str) -> list[str] | None:
    """Every IPv4 literal in a text (also in ::ffff: form); None if it has another IPv6 one."""
    if "::" in re.sub(r"::ffff:(?=\d)", "", text):
        return None
    return re.findall(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])", text)


def dig(server: str, *args: str) -> tuple[str, set[str], str]:
    proc = run([need("dig"), f"@{server}", "+time=5", "+tries=2", *args])
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    status = out.split("status: ", 1)[1].split(",", 1)[0]
    flags = set(out.split(";; flags: ", 1)[1].split(";", 1)[0].split())
    return status, flags, out


def answer(out: str) -> list[list[str]]:
    marker = ";; ANSWER SECTION:\n"
    if marker not in out:
        return []
    body = out.split(marker, 1)[1].split("\n\n", 1)[0]
    return [line.split() for line in body.splitlines() if line and not line.startswith(";")]


def delv(server: str, anchor: Path, qname: str, qtype: str) -> list[str]:
    proc = run([need("delv"), f"@{server}", "-a", str(anchor), "+root=.", qname, qtype])
    return (proc.stdout + proc.stderr).splitlines()


# Each check: qname, qtype, expected rcode, AD expected, expected answer type (None: no answer).
VALIDATING = [
    ("www.example.test", "A", "NOERROR", True, "A"),
    ("www.example.test", "AAAA", "NOERROR", True, "AAAA"),
    ("example.test", "MX", "NOERROR", True, "MX"),
    ("example.test", "TXT", "NOERROR", True, "TXT"),
    ("web.example.test", "A", "NOERROR", True, "CNAME"),
    ("www.nsec.test", "A", "NOERROR", True, "A"),
    ("mail.nsec.test", "A", "NOERROR", True, "A"),
    ("nope.example.test", "A", "NXDOMAIN", True, None),
    ("nope.nsec.test", "A", "NXDOMAIN", True, None),
    ("www.nsec.test", "MX", "NOERROR", True, None),
    ("anything.wild.example.test", "TXT", "NOERROR", True, "TXT"),
    ("a.b.wild.nsec.test", "A", "NOERROR", True, "A"),
    ("www.optout.test", "A", "NOERROR", True, "A"),
    ("www.insecure.test", "A", "NOERROR", False, "A"),
    ("x.wild.insecure.test", "TXT", "NOERROR", False, "TXT"),
    ("www.unsigned.optout.test", "A", "NOERROR", False, "A"),
    ("nope.unsigned.optout.test", "A", "NXDOMAIN", False, None),
    ("www.dnssec-failed.test", "A", "SERVFAIL", False, None),
]

DELV = [
    ("www.example.test", "A", "; fully validated"),
    ("www.nsec.test", "A", "; fully validated"),
    ("anything.wild.example.test", "A", "; fully validated"),
    ("x.wild.nsec.test", "TXT", "; fully validated"),
    ("nope.example.test", "A", "; negative response, fully validated"),
    ("nope.nsec.test", "A", "; negative response, fully validated"),
    ("www.insecure.test", "A", "; unsigned answer"),
    ("www.unsigned.optout.test", "A", "; unsigned answer"),
]


def check_resolver(server: str, qname: str, qtype: str, rcode: str, ad: bool, rtype: str | None) -> None:
    status, flags, out = dig(server, "+dnssec", qname, qtype)
    assert status == rcode, out
    assert ("ad" in flags) == ad, out
    types = [r[3] for r in answer(out)]
    if rtype is None:
        assert [t for t in types if t != "RRSIG"] == [], out
    else:
        assert types and types[0] == rtype, out


def check_dnssec_failed_with_cd(server: str) -> None:
    status, flags, out = dig(server, "+cd", "+dnssec", "www.dnssec-failed.test", "A")
    assert status == "NOERROR" and "ad" not in flags, out
    assert [r[4] for r in answer(out) if r[3] == "A"] == ["127.53.2.8"], out


# ---- lab up with Unbound (the default) ---------------------------------------------------------


def test_up_writes_the_lab_files(lab: LabDir) -> None:
    for name in ("anchor.ds", "anchor.conf", "root.hints", "unbound.conf", "named.conf", "lab.json"):
        assert (lab.path / name).is_file(), name
    text = lab.up_text  # type: ignore[attr-defined]
    assert f"dig @{UNBOUND} +dnssec www.example.test" in text
    assert f"delv @{UNBOUND} -a {lab.path}/anchor.conf +root=. www.example.test A" in text
    # anchor.ds is the DS of the lab root's KSK, exactly as BIND's dnssec-dsfromkey makes it.
    ksk = [p for p in (lab.path / "keys" / "root").glob("K.+013+*.key") if "key-signing" in p.read_text()]
    assert len(ksk) == 1
    bind = run([need("dnssec-dsfromkey"), "-2", str(ksk[0])], check=True).stdout.split()
    ours = [ln.split() for ln in lab.anchor().splitlines() if not ln.startswith(";")]
    assert len(ours) == 1 and ours[0][4:] == bind[3:] and ours[0][0] == "."
    tag, alg, dt, digest = bind[3:]
    assert f'. static-ds {tag} {alg} {dt} "{digest}";' in (lab.path / "anchor.conf").read_text()
    assert f'. static-ds {tag} {alg} {dt} "{digest}";' in (lab.path / "named.conf").read_text()
    # every server address and the resolver's were added to lo, and recorded
    assert lo() - lab.before == set(hierarchy.server_addresses()) | {UNBOUND, SIGCHAIN}
    assert set(lab.state()["added_addresses"]) == set(hierarchy.server_addresses()) | {UNBOUND, SIGCHAIN}
    for z in hierarchy.ZONES:
        pid = int((lab.path / "run" / f"serve-{z.address}.pid").read_text())
        assert processes.is_ours(pid, str(lab.path)), z
    assert processes.is_ours(int((lab.path / "run" / "unbound.pid").read_text()), str(lab.path))


def test_generated_configs_pass_the_peers_checkers_and_stay_on_loopback(lab: LabDir) -> None:
    run([need("unbound-checkconf"), str(lab.path / "unbound.conf")], check=True)
    run([need("named-checkconf"), str(lab.path / "named.conf")], check=True)
    texts = {p.name: p.read_text() for p in lab.path.iterdir() if p.suffix in (".conf", ".hints", ".ds")}
    texts |= {p.name: p.read_text() for p in (lab.path / "zones").iterdir()}
    for name, text in texts.items():
        found = ip_literals(text)
        assert found is not None, f"{name} names an IPv6 address"
        for addr in found:
            assert addr.startswith("127."), f"{name} names {addr}"
            if not addr.startswith("127.0.0."):  # the ACLs say 127.0.0.0/8
                assert addr.startswith("127.53."), f"{name} names {addr}"
    unbound = texts["unbound.conf"]
    for line in ('username: ""', "do-not-query-localhost: no", 'local-zone: "test." nodefault',
                 f"interface: {UNBOUND}", "do-ip6: no", f'root-hints: "{lab.path}/root.hints"',
                 f'trust-anchor-file: "{lab.path}/anchor.ds"', f'pidfile: "{lab.path}/run/unbound.pid"',
                 f'control-interface: "{lab.path}/run/unbound.ctl"', "control-use-cert: no"):
        assert f"\t{line}\n" in unbound, line
    named = texts["named.conf"]
    for line in (f'directory "{lab.path}";', f"listen-on port 53 {{ {NAMED}; }};",
                 "listen-on-v6 { none; };", "recursion yes;", "dnssec-validation yes;",
                 f'file "{lab.path}/root.hints";'):
        assert line in named, line
    assert texts["root.hints"].split("\n", 1)[1] == (
        f".\t3600000\tIN\tNS\ta.root-servers.lab.\na.root-servers.lab.\t3600000\tIN\tA\t{hierarchy.ROOT.address}\n")
    for name, text in texts.items():  # no real root hints or root key anywhere
        assert "root-servers.net" not in text and "/usr/share/dns" not in text, name


@pytest.mark.parametrize(("qname", "qtype", "rcode", "ad", "rtype"), VALIDATING)
def test_unbound_validates_the_lab(lab: LabDir, qname: str, qtype: str, rcode: str, ad: bool,
                                   rtype: str | None) -> None:
    check_resolver(UNBOUND, qname, qtype, rcode, ad, rtype)


def test_unbound_servfails_dnssec_failed_and_cd_shows_the_data(lab: LabDir) -> None:
    check_dnssec_failed_with_cd(UNBOUND)


@pytest.mark.parametrize(("qname", "qtype", "rcode", "ad", "rtype"), VALIDATING)
def test_sigchain_resolver_validates_the_lab(lab: LabDir, qname: str, qtype: str, rcode: str,
                                             ad: bool, rtype: str | None) -> None:
    check_resolver(SIGCHAIN, qname, qtype, rcode, ad, rtype)


def test_sigchain_resolver_servfails_dnssec_failed_with_ede_and_cd_shows_the_data(lab: LabDir) -> None:
    status, _, out = dig(SIGCHAIN, "+dnssec", "www.dnssec-failed.test", "A")
    assert status == "SERVFAIL" and "EDE: 6 (DNSSEC Bogus)" in out and "matches no DNSKEY" in out, out
    check_dnssec_failed_with_cd(SIGCHAIN)
    st = json.loads(sc("lab", "status", "--dir", lab.path, "--json").stdout)
    [rec] = [p for p in st["processes"] if p["name"] == "sigchain-resolver"]
    assert rec["running"] and rec["address"] == SIGCHAIN and rec["kind"] == "resolver"


@pytest.mark.parametrize(("qname", "qtype", "verdict"), DELV)
def test_delv_validates_through_unbound(lab: LabDir, qname: str, qtype: str, verdict: str) -> None:
    assert verdict in delv(UNBOUND, lab.path / "anchor.conf", qname, qtype)


def test_delv_rejects_dnssec_failed(lab: LabDir) -> None:
    out = delv(UNBOUND, lab.path / "anchor.conf", "www.dnssec-failed.test", "A")
    assert any(line.startswith(";; resolution failed") for line in out), out
    assert "; fully validated" not in out


def test_every_referral_is_real(lab: LabDir) -> None:
    """Each address serves only its own zone: the root refers to test., test. to its children."""
    status, flags, out = dig(hierarchy.ROOT.address, "+norec", "+dnssec", "www.example.test", "A")
    assert status == "NOERROR" and "aa" not in flags and "test.\t" in out and "\tDS\t" in out, out
    status, flags, out = dig("127.53.0.2", "+norec", "www.example.test", "A")
    assert "aa" not in flags and "ns1.example.test." in out, out
    status, _, _ = dig("127.53.0.3", "+norec", "www.nsec.test", "A")
    assert status == "REFUSED"
    status, _, out = dig("127.53.0.6", "+norec", "+dnssec", "www.unsigned.optout.test", "A")
    assert status == "NOERROR" and "NSEC3" in out and "ns1.unsigned.optout.test." in out, out


def test_status_text_and_json(lab: LabDir) -> None:
    proc = sc("lab", "status", "--dir", lab.path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert f"lab in {lab.path}: up; resolver unbound on {UNBOUND}" in text
    for z in hierarchy.ZONES:
        assert re.search(rf"^  {re.escape(z.name.to_text())}\s+{z.address}\s+yes\s", text, re.M), z.name
    assert "(matches no key!)" in text and "none (insecure)" in text
    proc = sc("lab", "status", "--dir", lab.path, "--json")
    st = json.loads(proc.stdout)
    assert st["running"] and st["resolver"] == "unbound" and st["resolver_address"] == UNBOUND
    zones = {z["zone"]: z for z in st["zones"]}
    now = time.time()
    for z in hierarchy.ZONES:
        entry = zones[z.name.to_text()]
        assert entry["server"] == z.address and entry["server_running"]
        assert entry["answering_serial"] == entry["serial"]
        if z.signed:
            assert sorted(k["role"] for k in entry["keys"]) == ["ksk", "zsk"]
            assert 25 * 86400 < entry["earliest_expiry_epoch"] - now <= 30 * 86400
            ksk = next(k["key_tag"] for k in entry["keys"] if k["role"] == "ksk")
            ds = entry["ds_at_parent"]
            assert len(ds) == 1
            if z.broken_ds:
                assert ds[0]["key_tag"] != ksk and not ds[0]["matches_key"]
            else:
                assert ds[0]["key_tag"] == ksk and ds[0]["matches_key"]
        else:
            assert entry["keys"] == [] and entry["ds_at_parent"] == [] and entry["earliest_expiry"] is None
    assert {p["name"] for p in st["processes"]} == {f"serve-{a}" for a in hierarchy.server_addresses()} | {
        "unbound", "sigchain-resolver"}
    assert all(p["running"] for p in st["processes"])


def test_dry_run_of_an_unchanged_lab_only_checks_the_servers(lab: LabDir) -> None:
    before = (lab.path / "lab.json").read_bytes()
    proc = sc("lab", "up", "--dir", lab.path, "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"lab in {lab.path}: dry run, nothing changed; lab up would:"
    serials = {z["zone"]: z["serial"] for z in lab.state_zones()}
    assert lines[1:-1] == [f"  check {hierarchy.server_name(z)} serves {z.name} serial "
                           f"{serials[z.name.to_text()]} (health check)" for z in hierarchy.ZONES]
    plan = json.loads(sc("lab", "up", "--dir", lab.path, "--dry-run", "--json").stdout)
    assert plan["dry_run"] and {a["action"] for a in plan["actions"]} == {"WaitServing"}
    # Signed for 30 days less up to 1 day of jitter: due for re-signing half-way, ~14.5 days on.
    assert 14 * 86400 < plan["wake_at"] - time.time() < 15 * 86400
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(plan["wake_at"]))
    assert lines[-1] == f"after that, plan again before {when} (re-sign at half validity)"
    assert (lab.path / "lab.json").read_bytes() == before


def test_dry_run_refuses_busy_ports_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new"
    proc = sc("lab", "up", "--dir", target, "--dry-run", "--resolver", "none", "--json")
    assert proc.returncode == 3, proc.stdout + proc.stderr  # the module's lab holds the ports
    error = json.loads(proc.stdout)["error"]  # with --json, the error is JSON on stdout
    assert error["exit"] == 3 and "port 53 on 127.53.0.1 is already in use" in error["message"]
    assert not target.exists()


def test_second_up_reuses_keys_and_anchor(lab: LabDir) -> None:
    keys_before = sorted(p.name for p in (lab.path / "keys").rglob("K*"))
    anchor, pids = lab.anchor(), {k: v["pid"] for k, v in lab.state()["processes"].items()}
    out = lab.up()
    assert lab.anchor() == anchor and not out["anchor_changed"]
    assert sorted(p.name for p in (lab.path / "keys").rglob("K*")) == keys_before
    assert {z["action"] for z in out["zones"]} == {"kept"}
    assert {s["action"] for s in out["servers"]} == {"running"}
    assert [(r["name"], r["action"]) for r in out["resolvers"]] == [
        ("unbound", "running"), ("sigchain-resolver", "running")]
    assert {k: v["pid"] for k, v in lab.state()["processes"].items()} == pids
    assert out["added_addresses"] == []
    # Nothing re-signed: the next re-signing is due when the first zone reaches half validity.
    status = json.loads(sc("lab", "status", "--dir", lab.path, "--json").stdout)
    expiries = [z["earliest_expiry_epoch"] for z in status["zones"] if z.get("earliest_expiry_epoch")]
    assert out["resign_by"] is not None and out["resign_by"] < min(expiries)


def test_status_flags_a_dead_server_and_up_restarts_it(lab: LabDir) -> None:
    rec = lab.state()["processes"]["serve-127.53.0.4"]
    os.kill(rec["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while processes.is_ours(rec["pid"], rec["marker"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc = sc("lab", "status", "--dir", lab.path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "degraded" in proc.stdout and re.search(r"serve-127\.53\.0\.4\s+pid \d+\s+NOT RUNNING", proc.stdout)
    out = lab.up()
    servers = {s["address"]: s["action"] for s in out["servers"]}
    assert servers.pop("127.53.0.4") == "started" and set(servers.values()) == {"running"}
    assert sc("lab", "status", "--dir", lab.path).returncode == 0
    check_resolver(UNBOUND, "www.nsec.test", "A", "NOERROR", True, "A")


def test_up_resigns_a_zone_past_half_its_validity(lab: LabDir) -> None:
    """Replace nsec.test's signed file by one signed 20 days ago for 30 days: the next `up`
    re-signs that zone only, the server reloads it, and Unbound's cache is flushed."""
    _, _, out = dig(UNBOUND, "nsec.test", "SOA")
    old_serial = int(answer(out)[0][6])
    zones, keys = lab.path / "zones", lab.path / "keys" / "nsec.test"
    sc("sign", zones / "nsec.test.zone", "--origin", "nsec.test.", "--keys", keys,
       "-o", zones / "nsec.test.signed", "--inception", "now-20d", "--validity", "30d",
       "--jitter", "0", check=True)
    st = json.loads(sc("lab", "status", "--dir", lab.path, "--json").stdout)
    assert next(z for z in st["zones"] if z["zone"] == "nsec.test.")["resign_due"]
    signed_before = (zones / "nsec.test.signed").read_bytes()
    dry = sc("lab", "up", "--dir", lab.path, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "  sign nsec.test. (past half validity)\n" in dry.stdout
    assert "  reload serve-127.53.0.4 (nsec.test.) (its zone changed)\n" in dry.stdout
    assert "  flush resolver unbound's cache (zones or the trust anchor changed)\n" in dry.stdout
    assert "  sign " not in dry.stdout.replace("  sign nsec.test.", "")
    assert (zones / "nsec.test.signed").read_bytes() == signed_before
    out_up = lab.up()
    actions = {z["zone"]: z["action"] for z in out_up["zones"]}
    assert actions.pop("nsec.test.") == "re-signed (past half validity)"
    assert set(actions.values()) == {"kept"}
    servers = {s["zone"]: s["action"] for s in out_up["servers"]}
    assert servers.pop("nsec.test.") == "reloaded" and set(servers.values()) == {"running"}
    assert [(r["name"], r["action"]) for r in out_up["resolvers"]] == [
        ("unbound", "cache flushed"), ("sigchain-resolver", "cache flushed")]
    _, _, out = dig(UNBOUND, "nsec.test", "SOA")  # a cached SOA would still show the old serial
    assert int(answer(out)[0][6]) > old_serial
    st = json.loads(sc("lab", "status", "--dir", lab.path, "--json").stdout)
    nsec = next(z for z in st["zones"] if z["zone"] == "nsec.test.")
    assert not nsec["resign_due"] and nsec["earliest_expiry_epoch"] - time.time() > 25 * 86400
    check_resolver(UNBOUND, "www.nsec.test", "A", "NOERROR", True, "A")


def test_a_second_lab_finds_the_ports_busy(lab: LabDir, tmp_path: Path) -> None:
    other = tmp_path / "other"
    proc = sc("lab", "up", "--dir", other)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "port 53 on 127.53.0.1 is already in use" in proc.stderr
    assert not other.exists()  # refused before writing anything
    check_resolver(UNBOUND, "www.example.test", "A", "NOERROR", True, "A")  # the first lab is untouched


# ---- the same with named --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def named_lab(lab: LabDir) -> LabDir:
    out = lab.up("--resolver", "named")
    assert {(r["name"], r["action"]) for r in out["resolvers"]} == {
        ("unbound", "stopped"), ("named", "started"), ("sigchain-resolver", "running")}
    assert out["added_addresses"] == [NAMED]
    assert {z["action"] for z in out["zones"]} == {"kept"}
    return lab


def test_named_replaces_unbound(named_lab: LabDir) -> None:
    st = named_lab.state()
    assert "unbound" not in st["processes"] and st["resolver"] == "named"
    assert not (named_lab.path / "run" / "unbound.ctl").exists()
    assert loopback.port_problem(UNBOUND, 53) is None  # nothing listens there any more
    assert NAMED in lo()


@pytest.mark.parametrize(("qname", "qtype", "rcode", "ad", "rtype"), VALIDATING)
def test_named_validates_the_lab(named_lab: LabDir, qname: str, qtype: str, rcode: str, ad: bool,
                                 rtype: str | None) -> None:
    check_resolver(NAMED, qname, qtype, rcode, ad, rtype)


def test_named_servfails_dnssec_failed_and_cd_shows_the_data(named_lab: LabDir) -> None:
    check_dnssec_failed_with_cd(NAMED)


@pytest.mark.parametrize(("qname", "qtype", "verdict"), DELV)
def test_delv_validates_through_named(named_lab: LabDir, qname: str, qtype: str, verdict: str) -> None:
    assert verdict in delv(NAMED, named_lab.path / "anchor.conf", qname, qtype)


def public_keys(directory: Path) -> set[tuple[str, str]]:
    """Each key file's owner and public key. Not its file name: a new key may draw an old
    key's 16-bit tag by chance (CI once saw that), and its file is then named the same."""
    out = set()
    for p in directory.rglob("K*.key"):
        owner, _, dnskey = keystore.load_public(str(p))
        out.add((owner.to_text(), dnskey.to_text()))
    return out


def test_fresh_makes_new_keys_and_anchor(named_lab: LabDir, tmp_path: Path) -> None:
    lab = named_lab
    old_anchor = tmp_path / "old-anchor.conf"
    old_anchor.write_text((lab.path / "anchor.conf").read_text())
    anchor = lab.anchor()
    keys_before = public_keys(lab.path / "keys")
    out = lab.up("--fresh")  # the resolver stays the lab's current one: named
    assert out["anchor_changed"] and lab.anchor() != anchor
    keys_after = public_keys(lab.path / "keys")
    assert len(keys_after) == len(keys_before) and not keys_before & keys_after
    assert {z["action"].split(" ")[0] for z in out["zones"]} == {"signed", "written"}
    assert [(r["name"], r["action"]) for r in out["resolvers"]] == [
        ("named", "started"), ("sigchain-resolver", "started")]  # a new anchor: restarted
    check_resolver(NAMED, "www.example.test", "A", "NOERROR", True, "A")
    check_resolver(NAMED, "www.dnssec-failed.test", "A", "SERVFAIL", False, None)
    assert "; fully validated" in delv(NAMED, lab.path / "anchor.conf", "www.example.test", "A")
    stale = delv(NAMED, old_anchor, "www.example.test", "A")
    assert "; fully validated" not in stale and any("resolution failed" in ln for ln in stale), stale


def test_resolver_none_stops_the_resolver_and_keeps_the_servers(named_lab: LabDir) -> None:
    out = named_lab.up("--resolver", "none")
    assert [(r["name"], r["action"]) for r in out["resolvers"]] == [
        ("named", "stopped"), ("sigchain-resolver", "stopped")]
    assert {s["action"] for s in out["servers"]} == {"running"}
    assert loopback.port_problem(NAMED, 53) is None and loopback.port_problem(SIGCHAIN, 53) is None
    status, flags, _ = dig(hierarchy.ROOT.address, "+norec", ".", "SOA")
    assert status == "NOERROR" and "aa" in flags


# ---- down, and failures that must leave nothing behind ---------------------------------------------


def test_down_stops_everything_and_removes_only_its_addresses(lab: LabDir) -> None:
    recorded = {k: (v["pid"], v["marker"]) for k, v in lab.state()["processes"].items()}
    assert len(recorded) == len(hierarchy.ZONES)
    proc = sc("lab", "down", "--dir", lab.path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("stopped: serve-127.53.0.1, ")
    assert "removed from lo: 127.53.0.1, " in proc.stdout and "127.53.1.1, 127.53.1.3, 127.53.1.2" in proc.stdout
    for name, (pid, marker) in recorded.items():
        assert not processes.is_ours(pid, marker), name
        assert not (lab.path / "run" / f"{name}.pid").exists(), name
    assert lo() == lab.before
    for a in LAB_ADDRESSES:
        assert loopback.port_problem(a, 53) is None, a
    st = json.loads(sc("lab", "status", "--dir", lab.path, "--json").stdout)
    assert st["processes"] == [] and st["added_addresses"] == [] and not st["running"]
    assert "lab in" in sc("lab", "status", "--dir", lab.path).stdout
    again = sc("lab", "down", "--dir", lab.path)
    assert again.returncode == 0 and "nothing to stop" in again.stdout
    # keys and zones stay for the next `up`
    assert list((lab.path / "keys" / "root").glob("K*.private"))


def test_dry_run_of_a_new_lab_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    before = lo()
    target = tmp_path / "new"
    proc = sc("lab", "up", "--dir", target, "--dry-run", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    actions = json.loads(proc.stdout)["actions"]
    kinds = [a["action"] for a in actions]
    assert kinds.count("GenerateKey") == 2 * sum(z.signed for z in hierarchy.ZONES) + 1
    assert kinds.count("AddAddress") == len(hierarchy.ZONES) + 2 and kinds[-2:] == ["StartResolver"] * 2
    assert {a["because"] for a in actions if a["action"] == "WriteZone"} == {"new"}
    text = sc("lab", "up", "--dir", target, "--dry-run").stdout
    assert "  generate a decoy KSK for dnssec-failed.test. (its parent's DS must match no key)\n" in text
    assert "  add 127.53.0.1/32 to lo (not on lo)\n" in text
    assert not target.exists() and lo() == before


def test_port_busy_is_exit_3_and_leaves_nothing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("run as root")
    before = lo()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.53.0.4", 53))
        proc = sc("lab", "up", "--dir", tmp_path / "lab")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "sigchain: error: cannot bring the lab up: UDP port 53 on 127.53.0.4 is already in use" in proc.stderr
    assert lo() == before
    assert not (tmp_path / "lab").exists()


def test_failure_after_servers_started_tears_everything_down(tmp_path: Path) -> None:
    """An `unbound` that exits at once: the servers already started are stopped again and
    the addresses added are removed; the error says what happened."""
    if os.geteuid() != 0:
        pytest.fail("run as root")
    before = lo()
    real = processes.find_binary
    lab = Lab(str(tmp_path / "lab"), which=lambda name: "/bin/false" if name == "unbound" else real(name))
    with pytest.raises(OperationalError, match="unbound exited at start"):
        lab.up("unbound")
    st = json.loads((tmp_path / "lab" / "lab.json").read_text())
    assert st["processes"] == {} and st["added_addresses"] == []
    assert lo() == before
    for a in hierarchy.server_addresses():
        assert loopback.port_problem(a, 53) is None, a
    assert not [p for p in (tmp_path / "lab" / "run").iterdir() if p.suffix == ".pid"]


def test_missing_peer_binaries_and_not_root_are_clear_errors(tmp_path: Path) -> None:
    lab = Lab(str(tmp_path / "lab"), which=lambda name: None, euid=lambda: 0)
    with pytest.raises(OperationalError) as exc:
        lab.up("named")
    assert exc.value.exit_code == 3
    assert str(exc.value) == ("missing peer program(s): ip, named; install with: "
                              "apt-get install -y bind9 iproute2")
    lab = Lab(str(tmp_path / "lab"), euid=lambda: 1000)
    with pytest.raises(OperationalError, match="lab up needs root"):
        lab.up()
    assert not (tmp_path / "lab").exists()


def test_not_root_from_the_command_line(tmp_path: Path) -> None:
    """Run with a non-root user ID: exit 3, one clear line, nothing written. A new user
    namespace without a mapping makes the process's user ID `nobody` (65534) while the kernel
    still checks its file access as the real owner's, so the checkout may live anywhere (a
    clone under a 0700 /root is not readable by the real `nobody`)."""
    unshare = need("unshare")
    target = tmp_path / "lab"
    proc = subprocess.run(
        [unshare, "--user", sys.executable, "-c",
         "import os, runpy, sys; assert os.geteuid() == 65534, os.geteuid(); "
         "sys.argv = ['sigchain', *sys.argv[1:]]; runpy.run_module('sigchain', run_name='__main__')",
         "lab", "up", "--dir", str(target)],
        capture_output=True, text=True, timeout=60, cwd="/",
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stderr.startswith("sigchain: error: lab up needs root")
    assert not target.exists()


def test_one_lab_command_at_a_time_per_directory(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("run as root")
    import fcntl

    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = sc("lab", "up", "--dir", tmp_path)
    finally:
        os.close(fd)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "another sigchain lab command is working on" in proc.stderr
    assert list(tmp_path.iterdir()) == []
