"""`sigchain diagnose` on the lab (as root, 127.53.x port 53) with Unbound as the resolver:
the lab's known-good, insecure, broken and missing names each get their exact cause, and a
zone whose server stops answering is named "not a DNSSEC problem"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigchain.core.lab import hierarchy
from tests.conftest import sc
from tests.interop.diaglab import unbound_lab

UNBOUND = hierarchy.RESOLVERS["unbound"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from unbound_lab(tmp_path_factory, "diaglab")


def diagnose(lab: Path, *args: str) -> tuple[int, dict]:
    proc = sc("diagnose", *args, "--resolver", UNBOUND, "--anchor", lab / "anchor.ds",
              "--root-hints", lab / "root.hints", "--timeout", "8", "--json")
    return proc.returncode, json.loads(proc.stdout)


def dig(*args: str) -> str:
    return subprocess.run(["dig", f"@{UNBOUND}", "+dnssec", "+tries=1", "+time=3", *args],
                          capture_output=True, text=True, timeout=30).stdout


@pytest.mark.parametrize(("qname", "cause", "code"), [
    ("www.example.test", "SECURE", 0),
    ("www.insecure.test", "INSECURE", 0),
    ("www.dnssec-failed.test", "DS_MISMATCH", 1),
    ("nothing-here.example.test", "NXDOMAIN", 3),
])
def test_lab_names_get_their_cause(lab: Path, qname: str, cause: str, code: int) -> None:
    rc, out = diagnose(lab, qname)
    assert (out["cause"], rc) == (cause, code), out["reason"]
    assert out["exit_code"] == code and out["fix"]


def test_ds_mismatch_shows_both_answers_and_the_failing_link(lab: Path) -> None:
    rc, out = diagnose(lab, "www.dnssec-failed.test", "A")
    assert "status: SERVFAIL" in dig("www.dnssec-failed.test", "A")  # Unbound, as the oracle
    assert out["resolver_answer"]["reply"]["rcode"] == "SERVFAIL"
    cd = out["resolver_answer_cd"]["reply"]
    assert cd["rcode"] == "NOERROR" and cd["answer_types"] == ["A"]
    link = out["failing_link"]
    assert (link["code"], link["name"]) == ("DS_NO_MATCHING_DNSKEY", "dnssec-failed.test.")
    tags = out["key_tags"][0]
    assert tags["ds"] and tags["dnskey"]
    assert {d["tag"] for d in tags["ds"]}.isdisjoint({k["tag"] for k in tags["dnskey"]})
    text = sc("diagnose", "www.dnssec-failed.test", "--resolver", UNBOUND, "--anchor",
              lab / "anchor.ds", "--root-hints", lab / "root.hints")
    assert text.returncode == 1
    assert "DNSSEC validation failure: DS_MISMATCH" in text.stdout
    assert "asked with CD: NOERROR" in text.stdout and "fix: publish at the parent" in text.stdout


def test_a_zone_whose_server_is_silent_is_not_a_dnssec_problem(lab: Path) -> None:
    state = json.loads((lab / "lab.json").read_text())
    pid = state["processes"][hierarchy.server_name(hierarchy.zone("nsec.test."))]["pid"]
    subprocess.run(["unbound-control", "-c", lab / "unbound.conf", "flush_zone", "."],
                   capture_output=True, check=True)
    os.killpg(pid, signal.SIGSTOP)  # the server and its workers stop answering
    try:
        rc, out = diagnose(lab, "www.nsec.test")
    finally:
        os.killpg(pid, signal.SIGCONT)
    assert (out["cause"], rc) == ("SERVERS_UNREACHABLE", 3), out["reason"]
    assert out["category"] == "not a DNSSEC problem"
    assert "127.53.0.4" in out["reason"]


SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(path: Path) -> list[tuple[str, str]]:
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    return [(t.text or "", t.get("class") or "") for t in root.iter(SVG + "text")]


def test_diagnose_and_trace_draw_the_chain_with_the_failing_link_named(lab: Path,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "failed.svg"
    rc, found = diagnose(lab, "www.dnssec-failed.test", "--svg", str(out))
    assert rc == 1 and found["cause"] == "DS_MISMATCH"
    texts = svg_texts(out)
    failing = [t for t, cls in texts if cls == "failing"]
    assert len(failing) == 1 and failing[0].startswith("FAILING LINK DS_NO_MATCHING_DNSKEY")
    assert "dnssec-failed.test." in failing[0]
    assert any(t.startswith("dnssec-failed.test.  [bogus]") for t, _ in texts)
    assert [t for t, cls in texts if cls == "verdict"][0].startswith(";; resolution failed")

    good = tmp_path / "good.svg"
    proc = sc("trace", "www.example.test", "--anchor", lab / "anchor.ds", "--root-hints",
              lab / "root.hints", "--svg", good)
    assert proc.returncode == 0, proc.stderr
    texts = svg_texts(good)
    assert not [t for t, cls in texts if cls in ("failing", "link-failing")]
    zones = [t.split()[0] for t, _ in texts if "  [" in t]
    assert zones == [".", "test.", "example.test."]
    assert [t for t, cls in texts if cls == "verdict"] == ["; fully validated"]


def test_json_keys_are_the_same_on_success_failure_and_bad_input(tmp_path: Path) -> None:
    """Without a lab: nothing listens on 127.53.9.250/251, so the resolver and the root
    refuse at once (not a DNSSEC problem, exit 3); bad input is exit 2 with the same keys."""
    hints = tmp_path / "hints"
    hints.write_text(". 3600 IN NS a.root.\na.root. 3600 IN A 127.53.9.251\n")
    anchor = tmp_path / "anchor"
    anchor.write_text(". 300 IN DS 20326 8 2 "
                      "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n")
    args = ("--anchor", anchor, "--root-hints", hints, "--timeout", "5", "--json")
    unreachable = sc("diagnose", "www.example.test", "--resolver", "127.53.9.250", *args)
    data = json.loads(unreachable.stdout)
    assert unreachable.returncode == 3 and data["cause"] == "SERVERS_UNREACHABLE"
    assert data["category"] == "not a DNSSEC problem" and data["error"] is None
    bad = sc("diagnose", "bad..name", "--resolver", "127.53.9.250", *args)
    assert bad.returncode == 2 and set(json.loads(bad.stdout)) == set(data)
    assert "Traceback" not in bad.stderr + unreachable.stderr
    no_lab = sc("lab", "drill", "broken-ds", "--dir", tmp_path / "nolab", "--json")
    assert no_lab.returncode == 2 and "no lab in" in json.loads(no_lab.stdout)["error"]["message"]
    checked = sc("check", "example.test", "--resolver", "127.53.9.250", *args)
    rows = json.loads(checked.stdout)["rows"]
    assert checked.returncode == 1 and [r["ok"] for r in rows] == [False] * 5
