"""Zones signed by sigchain pass BIND's dnssec-verify, ldns-verify-zone and named-checkzone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ZONE, need, run, sc
from tests.zonetools import keygen

ALGORITHMS = ["ecdsap256sha256", "ecdsap384sha384", "ed25519", "ed448", "rsasha256", "rsasha512"]


@pytest.fixture(scope="module")
def keysets(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """One key directory per (algorithm, layout): KSK+ZSK or a single CSK."""
    base = tmp_path_factory.mktemp("keys")
    out = {}
    for alg in ALGORITHMS:
        d = base / f"{alg}-kz"
        keygen(d, "example.test", "ksk", alg)
        keygen(d, "example.test", "zsk", alg)
        out[(alg, "ksk+zsk")] = d
        c = base / f"{alg}-csk"
        keygen(c, "example.test", "csk", alg)
        out[(alg, "csk")] = c
    return out


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
@pytest.mark.parametrize("layout", ["ksk+zsk", "csk"])
@pytest.mark.parametrize("alg", ALGORITHMS)
def test_signed_zone_passes_peers(
    keysets: dict[tuple[str, str], Path], tmp_path: Path, alg: str, layout: str, denial: str
) -> None:
    out = tmp_path / "example.test.signed"
    args = ["sign", EXAMPLE_ZONE, "--keys", keysets[(alg, layout)], "-o", out]
    if denial == "nsec3":
        args.append("--nsec3")
    sc(*args, check=True)
    text = out.read_text()
    assert ("NSEC3PARAM" in text) == (denial == "nsec3")
    assert "*.wild.example.test." in text and "ns.sub.example.test." in text

    verify = [need("dnssec-verify"), "-o", "example.test"]
    if layout == "csk":
        verify.append("-z")  # dnssec-verify expects a separate ZSK unless told otherwise
    run(verify + [str(out)], check=True)
    run([need("ldns-verify-zone"), str(out)], check=True)
    run([need("named-checkzone"), "-i", "full", "example.test", str(out)], check=True)
    sc("verify", out, check=True)


def test_opt_out_with_salt_and_iterations_passes_peers(keysets: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    out = tmp_path / "optout.signed"
    proc = sc("sign", EXAMPLE_ZONE, "--keys", keysets[("ecdsap256sha256", "ksk+zsk")], "-o", out,
              "--nsec3", "--opt-out", "--iterations", "5", "--salt", "aabbccdd", check=True)
    assert "RFC 9276" in proc.stderr  # warned, and still exit 0
    text = out.read_text()
    assert " 1 1 5 AABBCCDD " in text.upper()  # opt-out flag set in the NSEC3 records
    run([need("dnssec-verify"), "-o", "example.test", str(out)], check=True)
    run([need("ldns-verify-zone"), str(out)], check=True)
    verdict = sc("verify", out, "--json", check=True)
    assert "NSEC3_ITERATIONS_NONZERO" in verdict.stdout and "NSEC3_OPT_OUT" in verdict.stdout


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
def test_the_root_zone_passes_peers(tmp_path: Path, denial: str) -> None:
    """The root's NSEC3 owners are HASH. (not HASH..: the origin's text is the lone dot)."""
    keys = tmp_path / "keys"
    keygen(keys, ".", "csk", "ecdsap256sha256")
    zone = tmp_path / "root.zone"
    zone.write_text("$TTL 3600\n. SOA a.root-servers.net. nstld.example. 1 1800 900 604800 86400\n"
                    ". NS a.root-servers.net.\na.root-servers.net. A 192.0.2.4\n"
                    "test. NS ns.test.\nns.test. A 192.0.2.5\n")
    out = tmp_path / "root.signed"
    sc("sign", zone, "--origin", ".", "--keys", keys, "-o", out, f"--{denial}", check=True)
    assert ".. " not in out.read_text()
    run([need("dnssec-verify"), "-z", "-o", ".", str(out)], check=True)
    run([need("ldns-verify-zone"), str(out)], check=True)
    sc("verify", out, check=True)


OBSOLETE = """$ORIGIN example.test.
$TTL 3600
@ SOA ns hostmaster 1 3600 900 604800 300
@ NS ns
ns A 192.0.2.1
ob MB \\# 18 084d41494c484f5354074578616d706c6500
mg MG Group.Example.
mr MR Renamed.EXAMPLE.
md MD Dest.Example.
mf MF Fwd.Example.
mi MINFO Req.Example. Err.Example.
"""


def test_names_inside_obsolete_types_are_lower_cased_when_signed(tmp_path: Path) -> None:
    """RFC 4034 §6.2, RFC 3597 §7: the names in MD, MF, MB, MG, MR and MINFO RDATA are
    lower-cased in the canonical form, in RFC 3597 form (ob: MAILHOST.Example.) as in text.
    Both ways: the peers pass our signatures, and we pass dnssec-signzone's."""
    zone = tmp_path / "z"
    zone.write_text(OBSOLETE)
    keys = tmp_path / "keys"
    keygen(keys, "example.test", "ksk", "ecdsap256sha256")
    keygen(keys, "example.test", "zsk", "ecdsap256sha256")
    ours = tmp_path / "ours.signed"
    sc("sign", zone, "--origin", "example.test.", "--keys", keys, "-o", ours, check=True)
    run([need("dnssec-verify"), "-o", "example.test", str(ours)], check=True)
    run([need("ldns-verify-zone"), str(ours)], check=True)
    bind_keys = tmp_path / "bk"
    bind_keys.mkdir()
    for flags in (["-f", "KSK"], []):
        run([need("dnssec-keygen"), "-q", "-K", str(bind_keys), "-a", "ECDSAP256SHA256", *flags,
             "example.test."], check=True)
    theirs = tmp_path / "theirs.signed"
    run([need("dnssec-signzone"), "-q", "-S", "-K", str(bind_keys), "-o", "example.test.",
         "-f", str(theirs), str(zone)], check=True)
    assert " MB " in theirs.read_text()  # written in text form: read as such
    sc("verify", theirs, check=True)
