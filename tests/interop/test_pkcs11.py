"""Keys in a PKCS#11 token (SoftHSM2, a token made in a temporary SOFTHSM2_CONF): made inside
the token, never extractable, signing done by the token; BIND's dnssec-verify judges the zone."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from sigchain.core.dnssec import algorithms
from sigchain.edge import pkcs11store
from sigchain.errors import InputError
from tests.conftest import EXAMPLE_ZONE, need, run, sc

PIN = "1234"
MODULE = pkcs11store.DEFAULT_MODULE


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SoftHSM2 token labelled T with user PIN 1234; never the system's token store."""
    if not os.path.exists(MODULE):
        pytest.fail(f"SoftHSM2's module {MODULE} is missing (run the README test command: "
                    "bash dev/test, which installs softhsm2)")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    monkeypatch.delenv(pkcs11store.MODULE_ENV, raising=False)
    run([need("softhsm2-util"), "--init-token", "--free", "--label", "T", "--pin", PIN,
         "--so-pin", "5678"], check=True)
    pkcs11store.reset()  # this process may hold sessions on another test's token
    return "T"


def _big_zone(path: Path) -> Path:
    """The example zone with 1200 more names: more units (RRsets and NSECs) than one batch of
    2000, so worker processes sign."""
    extra = "".join(f"h{i} 300 IN A 192.0.2.{i % 250 + 1}\n" for i in range(1200))
    path.write_text(EXAMPLE_ZONE.read_text() + extra)
    return path


def _fields(private: Path) -> set[str]:
    return {line.split(":", 1)[0] for line in private.read_text().splitlines() if line}


def test_zone_signed_by_keys_in_the_token_passes_dnssec_verify(token: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    ksk = sc("keygen", "example.test", "--role", "ksk", "--dir", keys, "--store",
             f"pkcs11:token={token};object=ksk1?pin-source={pin_file}", check=True).stdout.strip()
    warned = sc("keygen", "example.test", "--role", "zsk", "--dir", keys, "--store",
                f"pkcs11:token={token};object=zsk1?pin-value={PIN}", check=True).stderr
    assert "pin-source=FILE keeps it" in warned
    for private in keys.glob("*.private"):
        # A reference, as BIND writes for HSM keys: no key material in the file.
        assert _fields(private) == {"Private-key-format", "Algorithm", "Label", "Created",
                                    "Publish", "Activate"}
        assert oct(private.stat().st_mode & 0o777) == "0o600"
    assert f"Label: pkcs11:token={token};object=ksk1?pin-source=" in \
        (keys / f"{ksk}.private").read_text()
    out = tmp_path / "big.signed"
    proc = sc("sign", _big_zone(tmp_path / "big.zone"), "--keys", keys, "-o", out,
              "--threads", "2", check=True)
    assert "signatures made: 2426" in proc.stdout
    run([need("dnssec-verify"), "-o", "example.test", str(out)], check=True)
    run([need("ldns-verify-zone"), str(out)], check=True)


@pytest.mark.parametrize("alg", ["ecdsap384sha384", "ed25519", "ed448", "rsasha256"])
def test_other_algorithms_sign_in_the_token(token: str, tmp_path: Path, alg: str) -> None:
    keys = tmp_path / "keys"
    sc("keygen", "example.test", "--role", "csk", "-a", alg, "--dir", keys, "--store",
       f"pkcs11:token={token};object=csk?pin-value={PIN}", check=True)
    out = tmp_path / "z.signed"
    proc = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--deterministic",
              "--inception", "now-1h", check=True)
    assert "token's own nonces" in proc.stderr
    run([need("dnssec-verify"), "-z", "-o", "example.test", str(out)], check=True)


def test_the_token_refuses_to_export_the_private_key(token: str, tmp_path: Path) -> None:
    import pkcs11

    sc("keygen", "example.test", "--role", "zsk", "--dir", tmp_path / "keys", "--store",
       f"pkcs11:token={token};object=zsk1?pin-value={PIN}", check=True)
    lib = pkcs11.lib(MODULE)
    lib.reinitialize()  # the token was made after this process may have loaded the module
    with lib.get_token(token_label=token).open(user_pin=PIN) as session:
        key = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="zsk1")
        attr = pkcs11.Attribute
        assert key[attr.SENSITIVE] and key[attr.ALWAYS_SENSITIVE]
        assert not key[attr.EXTRACTABLE] and key[attr.NEVER_EXTRACTABLE]
        with pytest.raises(pkcs11.AttributeSensitive):
            key[attr.VALUE]  # the private scalar: the token will not read it out


def test_a_token_key_pickles_as_its_uri_and_signs_after(token: str, tmp_path: Path) -> None:
    """What a worker process gets: the URI and algorithm, and a session of its own on use."""
    alg = algorithms.get(13)
    key = pkcs11store.generate(f"pkcs11:token={token};object=k?pin-value={PIN}", alg)
    copy = pickle.loads(pickle.dumps(key))
    assert copy.label == key.label and copy.alg is alg
    data = b"data to sign"
    assert algorithms.verify(alg, key.public_key(), copy.sign_dnssec(data), data)


def _fails(proc: object, code: int, words: str) -> None:
    assert proc.returncode == code, proc.stderr  # type: ignore[attr-defined]
    lines = proc.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr, lines  # type: ignore[attr-defined]


def test_bad_uris_pins_and_modules_get_one_line_and_nothing_written(token: str,
                                                                    tmp_path: Path) -> None:
    keys = tmp_path / "keys"

    def keygen(uri: str) -> object:
        return sc("keygen", "example.test", "--role", "zsk", "--dir", keys, "--store", uri)

    _fails(keygen(f"pkcs11:token={token};object=x?pin-value=0000"), 2, "wrong PIN")
    _fails(keygen(f"pkcs11:token={token}?pin-value={PIN}"), 2, "object=LABEL")
    _fails(keygen(f"pkcs11:token={token};object=x;colour=red"), 2, "unknown attribute 'colour'")
    _fails(keygen(f"pkcs11:token=nope;object=x?pin-value={PIN}"), 2, "no token 'nope'")
    _fails(keygen(f"pkcs11:token={token};object=x?pin-value={PIN}&module-path=/no/such.so"), 3,
           "no PKCS#11 module at /no/such.so")
    _fails(keygen(f"pkcs11:token={token};object=x?pin-source={tmp_path}/nopin"), 3,
           "cannot read the PKCS#11 PIN")
    assert not keys.exists()
    # The files cannot be written: the key made in the token is taken out again.
    (tmp_path / "file").write_text("")
    proc = sc("keygen", "example.test", "--role", "zsk", "--dir", tmp_path / "file" / "keys",
              "--store", f"pkcs11:token={token};object=x?pin-value={PIN}")
    _fails(proc, 3, "cannot create key directory")
    sc("keygen", "example.test", "--role", "zsk", "--dir", keys, "--store",
       f"pkcs11:token={token};object=x?pin-value={PIN}", check=True)
    _fails(keygen(f"pkcs11:token={token};object=x?pin-value={PIN}"), 3, "already has an object")
    assert len(list(keys.iterdir())) == 2
    # A key file whose PIN is wrong: signing stops at once, naming the file.
    private = next(keys.glob("*.private"))
    private.write_text(private.read_text().replace(f"pin-value={PIN}", "pin-value=9999"))
    out = tmp_path / "z.signed"
    _fails(sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out), 2, f"{private}: PKCS#11")
    private.write_text(private.read_text().replace("Label: pkcs11:", "Label: pkcs11:colour=red;"))
    _fails(sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out), 2,
           f"{private}:3: bad PKCS#11 URI")
    assert not out.exists()


def test_uri_parts() -> None:
    uri = pkcs11store.parse_uri("pkcs11:token=My%20Token;object=zsk;id=%01%02"
                                "?pin-value=secret&module-path=/lib/x.so")
    assert (uri.token, uri.object, uri.id, uri.module()) == ("My Token", "zsk", b"\x01\x02",
                                                             "/lib/x.so")
    assert uri.pin_value == "secret"
    assert pkcs11store.key_uri("pkcs11:token=T?pin-source=/p", "ksk 1") == \
        "pkcs11:token=T;object=ksk%201?pin-source=/p"
    assert pkcs11store.key_uri("pkcs11:object=old;token=T", "k") == "pkcs11:token=T;object=k"
    with pytest.raises(InputError, match="pin-value or pin-source"):
        pkcs11store.parse_uri("pkcs11:token=T;object=k?pin-value=1&pin-source=/p")


def test_keys_run_makes_a_policys_keys_in_its_store(token: str, tmp_path: Path) -> None:
    """A policy's `store = "pkcs11:…"` sends `keys run` to the token; `sign` then signs with
    those keys and dnssec-verify accepts the zone."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    policy = tmp_path / "hsm.toml"
    policy.write_text(f'[[keys]]\nrole = "csk"\nalgorithm = "ecdsap256sha256"\n'
                      f'lifetime = "unlimited"\nstore = "pkcs11:token={token}?pin-value={PIN}"\n')
    sc("keys", "run", "example.test", "--policy", policy, "--keys", keys, check=True)
    privates = list(keys.glob("*.private"))
    assert len(privates) == 1
    assert "Label: pkcs11:token=T;object=example.test-csk-13-" in privates[0].read_text()
    assert "PrivateKey:" not in privates[0].read_text()
    out = tmp_path / "example.signed"
    sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, check=True)
    run([need("dnssec-verify"), "-z", "-o", "example.test", str(out)], check=True)  # a CSK
