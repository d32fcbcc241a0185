"""`sigchain walk` against `sigchain serve` on 127.57.2.x: the NSEC walk lists what ldns-walk
lists and every NSEC owner of the signed file; the NSEC3 chain collected is the file's, and
a wordlist that holds the labels recovers every name."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.zone
import pytest

from tests.conftest import EXAMPLE_ZONE, need, sc, terminate
from tests.interop.exporter_zones import Daemon
from tests.zonetools import keygen

HOST_NSEC, HOST_NSEC3 = "127.57.2.1", "127.57.2.2"
ORIGIN = "example.test."
WORDS = ["www", "mail", "ns1", "ns2", "web", "wild", "a", "b", "c", "sub", "insecure", "deep",
         "child", "ns", "ftp", "admin"]


def owners(path: Path, rdtype: str) -> set[str]:
    z = dns.zone.from_file(str(path), ORIGIN, relativize=False, check_origin=False)
    return {n.to_text() for n, node in z.nodes.items()
            if node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("walk")
    keys = base / "keys"
    keygen(keys, "example.test", "csk")
    files = {"nsec": base / "nsec.signed", "nsec3": base / "nsec3.signed"}
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", files["nsec"], check=True)
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", files["nsec3"], "--nsec3", "--salt", "C0FFEE",
       "--iterations", "5", check=True)
    out: dict[str, object] = {"files": files, "base": base}
    daemons = []
    try:
        for kind, host in (("nsec", HOST_NSEC), ("nsec3", HOST_NSEC3)):
            port = 53  # ldns-walk takes no port
            daemons.append(Daemon(base / f"{kind}.log", [
                "serve", "--listen", f"{host}#{port}", "--zone", f"{ORIGIN}={files[kind]}",
                "--udp-workers", "1"]))
            out[kind] = f"{host}#{port}"
        yield out
    finally:
        for d in daemons:
            d.stop()


def test_nsec_walk_lists_every_name(servers: dict[str, object]) -> None:
    server = str(servers["nsec"])
    proc = sc("walk", ORIGIN, "--server", server, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    names = {n["name"] for n in data["names"]}
    files = servers["files"]
    assert isinstance(files, dict)
    assert names == owners(files["nsec"], "NSEC") and data["complete"]
    assert {"sub.example.test.", "insecure.example.test.", "*.wild.example.test."} <= names
    www = next(n for n in data["names"] if n["name"] == "www.example.test.")
    assert www["types"] == ["A", "AAAA", "NSEC", "RRSIG"]
    ldns = subprocess.run([need("ldns-walk"), f"@{server.split('#')[0]}", ORIGIN],
                          capture_output=True, text=True, timeout=60)
    assert ldns.returncode == 0, ldns.stderr
    assert {line.split()[0] for line in ldns.stdout.splitlines() if line.strip()} == names


def test_nsec3_names_recovered_from_a_wordlist(servers: dict[str, object]) -> None:
    base, files = servers["base"], servers["files"]
    assert isinstance(base, Path) and isinstance(files, dict)
    wordlist = base / "words.txt"
    wordlist.write_text("# labels to try\n" + "\n".join(WORDS) + "\n")
    proc = sc("walk", ORIGIN, "--server", servers["nsec3"], "--wordlist", wordlist, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    hashes = owners(files["nsec3"], "NSEC3")
    assert data["nsec3"]["hashes"] == len(hashes) == data["nsec3"]["recovered"]
    assert data["nsec3"]["iterations"] == 5 and data["nsec3"]["salt"] == "c0ffee"
    names = {n["name"] for n in data["names"]}
    # every name of the zone, empty non-terminals included, below the insecure cuts excluded
    assert {"a.b.c.example.test.", "b.c.example.test.", "*.wild.example.test.",
            "child.deep.example.test.", "www.example.test.", ORIGIN} <= names
    assert len(names) == len(hashes)
    text = sc("walk", ORIGIN, "--server", servers["nsec3"], "--wordlist", wordlist)
    assert f"{len(hashes)} of {len(hashes)} hashes recovered" in text.stdout


def test_nsec3_partial_wordlist(servers: dict[str, object]) -> None:
    base = servers["base"]
    assert isinstance(base, Path)
    wordlist = base / "few.txt"
    wordlist.write_text("www\nmail\nnothere\n")
    proc = sc("walk", ORIGIN, "--server", servers["nsec3"], "--wordlist", wordlist)
    assert proc.returncode == 0, proc.stderr
    # the apex, www, mail and nothing under the cuts or the empty non-terminals
    total = len(owners(servers["files"]["nsec3"], "NSEC3"))  # type: ignore[index]
    assert f"3 of {total} hashes recovered" in proc.stdout
    assert proc.stdout.count("; not recovered: ") == total - 3


KNOT_CONF = """server:
    listen: {host}@53
    rundir: {dir}
database:
    storage: {dir}
template:
  - id: default
    storage: {dir}
zone:
  - domain: example.test
    file: {zone}
    module: mod-onlinesign
"""


def test_white_lies_from_knot_online_signing(tmp_path: Path) -> None:
    """Knot's online signing answers with minimal NSEC records (black lies, RFC 9824): the
    walk says so, exit 1, and lists only the apex rather than made-up names."""
    host = "127.57.3.1"
    conf = tmp_path / "knot.conf"
    conf.write_text(KNOT_CONF.format(host=host, dir=tmp_path, zone=EXAMPLE_ZONE))
    knot = subprocess.Popen([need("knotd"), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = dns.query.udp(dns.message.make_query(ORIGIN, "DNSKEY"), host, timeout=0.5)
                if r.answer:
                    break
            except (dns.exception.Timeout, OSError):
                pass
            assert knot.poll() is None and time.monotonic() < deadline, "knotd did not start"
            time.sleep(0.2)
        proc = sc("walk", ORIGIN, "--server", host, "--json")
    finally:
        terminate(knot)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["white_lies"] and not data["complete"] and "white lies" in data["problem"]
    assert [n["name"] for n in data["names"]] == [ORIGIN]


def test_unanswering_server_exits_3() -> None:
    proc = sc("walk", ORIGIN, "--server", "127.57.2.9#9", "--timeout", "0.3")
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
