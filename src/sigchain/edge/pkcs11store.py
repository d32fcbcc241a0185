"""PKCS#11 key store (python-pkcs11): DNSSEC key pairs generated inside a token, sensitive and
non-extractable, named by RFC 7512 URIs; the token does the signing, one session per process."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.algorithms import Algorithm, PublicKey
from sigchain.errors import InputError, OperationalError, SigchainError

MODULE_ENV = "SIGCHAIN_PKCS11_MODULE"
DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"  # Debian's softhsm2

_PATH_ATTRS = ("token", "serial", "object", "id", "type")
_QUERY_ATTRS = ("pin-value", "pin-source", "module-path")
_EDDSA_OIDS = {15: "1.3.101.112", 16: "1.3.101.113"}  # RFC 8410 Ed25519, Ed448
_RSA_MECHS = {5: "SHA1_RSA_PKCS", 7: "SHA1_RSA_PKCS", 8: "SHA256_RSA_PKCS",
              10: "SHA512_RSA_PKCS"}


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of an RFC 7512 URI a key store uses (`text` is the URI as given)."""

    text: str
    object: str
    token: str | None = None
    serial: str | None = None
    id: bytes | None = None
    pin_value: str | None = None
    pin_source: str | None = None
    module_path: str | None = None

    @property
    def token_name(self) -> str:
        return f"token {self.token!r}" if self.token is not None else f"token serial {self.serial}"

    def module(self) -> str:
        return self.module_path or os.environ.get(MODULE_ENV) or DEFAULT_MODULE


def _split(part: str, sep: str, known: tuple[str, ...]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for item in filter(None, part.split(sep)):
        name, eq, value = item.partition("=")
        if not eq or name not in known:
            raise InputError(f"bad PKCS#11 URI: unknown attribute {name!r} (RFC 7512; this key "
                             f"store uses {', '.join(known)})")
        if name in out:
            raise InputError(f"bad PKCS#11 URI: {name!r} given twice")
        out[name] = urllib.parse.unquote_to_bytes(value)
    return out


def parse_uri(text: str) -> Pkcs11Uri:
    """An RFC 7512 URI naming one key pair: `pkcs11:token=T;object=LABEL?pin-value=1234`
    (or `pin-source=FILE`, and `module-path=LIB`); InputError (exit 2) when malformed."""
    scheme, colon, rest = text.partition(":")
    if not colon or scheme.lower() != "pkcs11":
        raise InputError(f"bad PKCS#11 URI {text[:40]!r}: it must start with 'pkcs11:'")
    path, _, query = rest.partition("?")
    attrs = _split(path, ";", _PATH_ATTRS)
    params = _split(query, "&", _QUERY_ATTRS)
    try:
        got = {k: v.decode("utf-8") for k, v in {**attrs, **params}.items() if k != "id"}
    except UnicodeDecodeError:
        raise InputError("bad PKCS#11 URI: an attribute is not UTF-8") from None
    if "object" not in got or not got["object"]:
        raise InputError("bad PKCS#11 URI: it must name the key with object=LABEL")
    if "token" not in got and "serial" not in got:
        raise InputError("bad PKCS#11 URI: it must name the token with token=LABEL (or serial=)")
    if got.get("type", "private") not in ("private", "public"):
        raise InputError(f"bad PKCS#11 URI: type={got['type']} is not a key pair's half")
    if "pin-value" in got and "pin-source" in got:
        raise InputError("bad PKCS#11 URI: give pin-value or pin-source, not both")
    return Pkcs11Uri(text, got["object"], got.get("token"), got.get("serial"), attrs.get("id"),
                     got.get("pin-value"), got.get("pin-source"), got.get("module-path"))


def key_uri(store: str, label: str) -> str:
    """One key's URI in a store (a policy's `store = "pkcs11:token=T?pin-source=F"`): the
    store's URI with object=LABEL, so each key gets its own label, as BIND's key-store."""
    path, mark, query = store.partition("?")
    scheme, _, attrs = path.partition(":")
    parts = [p for p in attrs.split(";") if p and not p.startswith("object=")]
    parts.append("object=" + urllib.parse.quote(label, safe=""))
    text = f"{scheme}:{';'.join(parts)}{mark}{query}"
    parse_uri(text)
    return text


def _pin(uri: Pkcs11Uri) -> str | None:
    if uri.pin_source is None:
        return uri.pin_value
    path = uri.pin_source.removeprefix("file://").removeprefix("file:")
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise OperationalError(f"cannot read the PKCS#11 PIN: {why}", file=path) from None


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:  # pragma: no cover - a dependency; say so rather than trace back
        raise OperationalError("python-pkcs11 is not installed (pip install python-pkcs11)") \
            from None
    return pkcs11


_LIBS: dict[str, tuple[int, Any]] = {}
_SESSIONS: dict[tuple[str, str | None, str | None], tuple[int, Any]] = {}


def reset() -> None:
    """Forget this process's sessions and initialise loaded modules again, so the token
    configuration is read anew (SoftHSM2 reads SOFTHSM2_CONF when initialised)."""
    _SESSIONS.clear()
    for pid, lib in _LIBS.values():
        if pid == os.getpid():
            lib.reinitialize()


def _lib(module: str) -> Any:
    """The module, loaded once per process (initialised again in a forked child)."""
    pkcs11 = _pkcs11()
    got = _LIBS.get(module)
    if got is not None and got[0] == os.getpid():
        return got[1]
    if os.sep in module and not os.path.exists(module):  # a bare name: the loader's search
        raise OperationalError(f"no PKCS#11 module at {module} (install softhsm2, or set "
                               f"module-path= in the URI or {MODULE_ENV})")
    try:
        lib = pkcs11.lib(module)
        if got is not None:
            lib.reinitialize()  # PKCS#11: a child process must initialise the module again
    except pkcs11.PKCS11Error as exc:
        raise OperationalError(f"cannot load PKCS#11 module {module}: {exc}") from None
    _LIBS[module] = (os.getpid(), lib)
    return lib


def _failure(uri: Pkcs11Uri, exc: Exception) -> SigchainError:
    """A PKCS#11 error as one line: a wrong PIN or a missing token or key is bad input (2),
    anything else the token's failure (3)."""
    pkcs11 = _pkcs11()
    name = type(exc).__name__
    if isinstance(exc, pkcs11.PinIncorrect | pkcs11.PinInvalid | pkcs11.PinLenRange):
        return InputError(f"PKCS#11 {uri.token_name}: wrong PIN ({name})")
    if isinstance(exc, pkcs11.NoSuchToken):
        return InputError(f"PKCS#11: no {uri.token_name} in module {uri.module()}")
    if isinstance(exc, pkcs11.UserPinNotInitialized):
        return InputError(f"PKCS#11 {uri.token_name}: its user PIN is not set")
    detail = f": {exc}" if str(exc) else ""
    return OperationalError(f"PKCS#11 {uri.token_name}: {name}{detail}")


@contextmanager
def _errors(uri: Pkcs11Uri) -> Iterator[None]:
    pkcs11 = _pkcs11()
    try:
        yield
    except pkcs11.PKCS11Error as exc:
        raise _failure(uri, exc) from None


def _open(uri: Pkcs11Uri, rw: bool = False) -> Any:
    """A new logged-in session on the URI's token."""
    lib = _lib(uri.module())
    with _errors(uri):
        token = lib.get_token(**({"token_label": uri.token} if uri.token is not None else {}),
                              **({"token_serial": uri.serial.encode()} if uri.serial else {}))
        try:
            return token.open(user_pin=_pin(uri), rw=rw)
        except _pkcs11().UserAlreadyLoggedIn:  # login is per token: another session did it
            return token.open(rw=rw)


def _session(uri: Pkcs11Uri) -> Any:
    """This process's read-only session on the URI's token (sessions never cross processes)."""
    key = (uri.module(), uri.token, uri.serial)
    got = _SESSIONS.get(key)
    if got is not None and got[0] == os.getpid():
        return got[1]
    session = _open(uri)
    _SESSIONS[key] = (os.getpid(), session)
    return session


def _template(uri: Pkcs11Uri, kind: str) -> dict[Any, Any]:
    pkcs11 = _pkcs11()
    cls = pkcs11.ObjectClass.PRIVATE_KEY if kind == "private" else pkcs11.ObjectClass.PUBLIC_KEY
    out: dict[Any, Any] = {pkcs11.Attribute.CLASS: cls, pkcs11.Attribute.LABEL: uri.object}
    if uri.id is not None:
        out[pkcs11.Attribute.ID] = uri.id
    return out


def _one(session: Any, uri: Pkcs11Uri, kind: str) -> Any:
    found = list(session.get_objects(_template(uri, kind)))
    if not found:
        hint = "" if kind == "public" or uri.pin_value or uri.pin_source else \
            " (the URI gives no PIN: private keys show only after login; add pin-source=FILE)"
        raise InputError(f"PKCS#11 {uri.token_name}: no {kind} key labelled {uri.object!r}{hint}")
    if len(found) > 1:
        raise InputError(f"PKCS#11 {uri.token_name}: more than one {kind} key labelled "
                         f"{uri.object!r}; add id= to the URI")
    return found[0]


def _der_octets(data: bytes) -> bytes:
    """The content of a DER OCTET STRING (how CKA_EC_POINT holds a point), else `data`."""
    if len(data) < 2 or data[0] != 0x04:
        return data
    n, off = data[1], 2
    if n & 0x80:
        width = n & 0x7F
        n, off = int.from_bytes(data[2:2 + width], "big"), 2 + width
    return data[off:off + n] if off + n == len(data) else data


def _public_key(alg: Algorithm, pub: Any) -> PublicKey:
    """A token's public key object as a cryptography public key."""
    attr = _pkcs11().Attribute
    if alg.family == "rsa":
        e, n = (int.from_bytes(pub[a], "big") for a in (attr.PUBLIC_EXPONENT, attr.MODULUS))
        return rsa.RSAPublicNumbers(e, n).public_key()
    point = _der_octets(pub[attr.EC_POINT])
    # ECDSA: uncompressed 0x04 || x || y; EdDSA: the raw key, as in a DNSKEY.
    return algorithms.public_key_from_dnskey(alg, point[1:] if alg.family == "ecdsa" else point)


class HsmKey:
    """A private key that stays in a PKCS#11 token. It pickles as (URI, algorithm): a worker
    process opens its own session when it first signs."""

    def __init__(self, uri: Pkcs11Uri, alg: Algorithm, source: str | None = None):
        self.uri, self.alg, self.source = uri, alg, source
        self._handle: tuple[int, Any] | None = None
        self._public: PublicKey | None = None

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return _unpickle, (self.uri.text, self.alg.number)

    @property
    def label(self) -> str:
        return self.uri.text

    def _located(self, exc: SigchainError) -> SigchainError:
        if self.source is not None and exc.file is None:
            return type(exc)(exc.message, file=self.source)
        return exc

    def _private(self) -> Any:
        if self._handle is None or self._handle[0] != os.getpid():
            try:
                with _errors(self.uri):
                    self._handle = os.getpid(), _one(_session(self.uri), self.uri, "private")
            except SigchainError as exc:
                raise self._located(exc) from None
        return self._handle[1]

    def public_key(self) -> PublicKey:
        """The public half, read from the token's public key object."""
        if self._public is None:
            try:
                with _errors(self.uri):
                    self._public = _public_key(self.alg,
                                               _one(_session(self.uri), self.uri, "public"))
            except SigchainError as exc:
                raise self._located(exc) from None
        return self._public

    def sign_dnssec(self, data: bytes) -> bytes:
        """The DNSSEC wire signature over `data`, made by the token (ECDSA: r||s over the
        digest, RFC 6605; EdDSA over the data, RFC 8080; RSA PKCS#1 v1.5, RFC 5702)."""
        mech = _pkcs11().Mechanism
        key = self._private()
        try:
            with _errors(self.uri):
                if self.alg.family == "ecdsa":
                    assert self.alg.hash is not None
                    digest = hashes.Hash(self.alg.hash())
                    digest.update(data)
                    return bytes(key.sign(digest.finalize(), mechanism=mech.ECDSA))
                if self.alg.family == "eddsa":
                    return bytes(key.sign(data, mechanism=mech.EDDSA))
                return bytes(key.sign(data, mechanism=getattr(mech, _RSA_MECHS[self.alg.number])))
        except SigchainError as exc:
            raise self._located(exc) from None


def _unpickle(text: str, algorithm: int) -> HsmKey:
    return HsmKey(parse_uri(text), algorithms.get(algorithm))


def open_key(label: str, alg: Algorithm, source: str | None = None,
             line: int | None = None) -> HsmKey:
    """The key a `.private` file's `Label:` names (no token access until it is used)."""
    try:
        return HsmKey(parse_uri(label), alg, source)
    except InputError as exc:
        raise InputError(exc.message, file=source, line=line) from None


def _generate_in(session: Any, uri: Pkcs11Uri, alg: Algorithm, bits: int | None) -> None:
    pkcs11 = _pkcs11()
    from pkcs11.util.ec import encode_named_curve_parameters

    attr, kt = pkcs11.Attribute, pkcs11.KeyType
    private = {attr.SENSITIVE: True, attr.EXTRACTABLE: False, attr.SIGN: True,
               attr.PRIVATE: True, attr.TOKEN: True}
    public = {attr.VERIFY: True, attr.TOKEN: True}
    if uri.id is not None:
        private[attr.ID] = public[attr.ID] = uri.id
    common = {"store": True, "label": uri.object, "private_template": private,
              "public_template": public}
    if alg.family == "rsa":
        session.generate_keypair(kt.RSA, bits or alg.default_bits, **common)
        return
    if alg.family == "ecdsa":
        assert alg.curve is not None
        key_type, oid = kt.EC, alg.curve.name
    else:
        key_type, oid = kt.EC_EDWARDS, _EDDSA_OIDS[alg.number]
    params = session.create_domain_parameters(
        key_type, {attr.EC_PARAMS: encode_named_curve_parameters(oid)}, local=True)
    params.generate_keypair(**common)


def generate(uri_text: str, alg: Algorithm, bits: int | None = None) -> HsmKey:
    """A new key pair made inside the token, labelled as the URI's object: private half
    sensitive and never extractable. Refuses a label the token already has (exit 3)."""
    uri = parse_uri(uri_text)
    if alg.family not in ("ecdsa", "eddsa", "rsa"):
        raise InputError(f"algorithm {alg.number} ({alg.mnemonic}) cannot be made in a token")
    session = _open(uri, rw=True)
    try:
        with _errors(uri):
            taken = list(session.get_objects({_pkcs11().Attribute.LABEL: uri.object}))
            if taken:
                raise OperationalError(f"PKCS#11 {uri.token_name} already has an object "
                                       f"labelled {uri.object!r}")
            _generate_in(session, uri, alg, bits)
    finally:
        session.close()
    return HsmKey(uri, alg)


def destroy(key: HsmKey) -> None:
    """Delete both halves of a key pair from its token (a key that was never used)."""
    session = _open(key.uri, rw=True)
    try:
        with _errors(key.uri):
            for kind in ("private", "public"):
                for obj in session.get_objects(_template(key.uri, kind)):
                    obj.destroy()
    finally:
        session.close()
    key._handle = None
