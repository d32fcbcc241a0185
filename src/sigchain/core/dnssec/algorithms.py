"""DNSSEC algorithm table (RFC 8624 / RFC 9904 status) and sign/verify adapters over cryptography.

Signatures are in DNSSEC wire form: ECDSA r||s (RFC 6605), raw EdDSA (RFC 8080),
RSA PKCS#1 v1.5 (RFC 3110, RFC 5702).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from sigchain.errors import InputError, UnsafeRefused
from sigchain.memo import Kept

PrivateKey = (
    ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
)
PublicKey = (
    ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)


@runtime_checkable
class TokenKey(Protocol):
    """A private key that stays in a token (PKCS#11, edge/pkcs11store): it signs in DNSSEC
    wire form itself and is known by its RFC 7512 URI (`label`, as BIND's .private `Label:`)."""

    @property
    def label(self) -> str: ...

    def public_key(self) -> PublicKey: ...

    def sign_dnssec(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class Algorithm:
    number: int
    mnemonic: str  # as BIND writes it in .private ("ECDSAP256SHA256")
    family: str  # "ecdsa" | "eddsa" | "rsa" | "none"
    may_sign: bool  # RFC 9904: signing allowed (without --force)
    may_validate: bool  # RFC 9904: validators may treat as supported
    hash: type[hashes.HashAlgorithm] | None = None
    curve: type[ec.EllipticCurve] | None = None
    size: int = 0  # ECDSA coordinate / EdDSA key length in bytes
    default_bits: int = 0  # RSA


ALGORITHMS: dict[int, Algorithm] = {
    a.number: a
    for a in (
        Algorithm(1, "RSAMD5", "none", False, False),
        Algorithm(3, "DSA", "none", False, False),
        Algorithm(5, "RSASHA1", "rsa", False, True, hashes.SHA1, default_bits=2048),
        Algorithm(6, "NSEC3DSA", "none", False, False),
        Algorithm(7, "NSEC3RSASHA1", "rsa", False, True, hashes.SHA1, default_bits=2048),
        Algorithm(8, "RSASHA256", "rsa", True, True, hashes.SHA256, default_bits=2048),
        Algorithm(10, "RSASHA512", "rsa", True, True, hashes.SHA512, default_bits=2048),
        Algorithm(12, "ECCGOST", "none", False, False),
        Algorithm(13, "ECDSAP256SHA256", "ecdsa", True, True, hashes.SHA256, ec.SECP256R1, 32),
        Algorithm(14, "ECDSAP384SHA384", "ecdsa", True, True, hashes.SHA384, ec.SECP384R1, 48),
        Algorithm(15, "ED25519", "eddsa", True, True, size=32),
        Algorithm(16, "ED448", "eddsa", True, True, size=57),
    )
}

_NAMES = {a.mnemonic.lower(): a.number for a in ALGORITHMS.values()}


def get(number: int) -> Algorithm:
    try:
        return ALGORITHMS[number]
    except KeyError:
        raise InputError(f"unknown DNSSEC algorithm {number}") from None


def from_text(text: str) -> Algorithm:
    t = text.strip().lower()
    if t.isdigit():
        return get(int(t))
    if t in _NAMES:
        return ALGORITHMS[_NAMES[t]]
    names = ", ".join(sorted(a.mnemonic.lower() for a in ALGORITHMS.values() if a.may_sign))
    raise InputError(f"unknown algorithm {text!r} (choose one of {names})")


def generate(alg: Algorithm, bits: int | None = None) -> PrivateKey:
    if alg.family == "ecdsa":
        assert alg.curve is not None
        return ec.generate_private_key(alg.curve())
    if alg.family == "eddsa":
        return ed25519.Ed25519PrivateKey.generate() if alg.number == 15 else ed448.Ed448PrivateKey.generate()
    if alg.family == "rsa":
        nbits = bits or alg.default_bits
        if not 1024 <= nbits <= 4096:
            raise InputError(f"RSA key size {nbits} out of range 1024..4096")
        return rsa.generate_private_key(public_exponent=65537, key_size=nbits)
    raise UnsafeRefused(f"algorithm {alg.number} ({alg.mnemonic}) cannot generate keys")


def _int_to_bytes(value: int, length: int | None = None) -> bytes:
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(length, "big")


def public_key_bytes(alg: Algorithm, key: PrivateKey | PublicKey) -> bytes:
    """The DNSKEY public key field for a key (RFC 3110, RFC 6605, RFC 8080)."""
    pub = key.public_key() if hasattr(key, "private_bytes") or isinstance(key, TokenKey) else key
    if alg.family == "ecdsa":
        nums = pub.public_numbers()  # type: ignore[union-attr]
        return _int_to_bytes(nums.x, alg.size) + _int_to_bytes(nums.y, alg.size)
    if alg.family == "eddsa":
        from cryptography.hazmat.primitives import serialization

        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)  # type: ignore[union-attr]
    if alg.family == "rsa":
        nums = pub.public_numbers()  # type: ignore[union-attr]
        e = _int_to_bytes(nums.e)
        prefix = bytes([len(e)]) if len(e) < 256 else b"\x00" + len(e).to_bytes(2, "big")
        return prefix + e + _int_to_bytes(nums.n)
    raise InputError(f"algorithm {alg.number} has no public key form")


def public_key_from_dnskey(alg: Algorithm, data: bytes) -> PublicKey:
    """Parse a DNSKEY public key field; raises InputError when malformed. The same key
    field gives the same (immutable, thread-safe) key object: a resolver validating one
    zone's names meets the zone's few keys again and again."""
    key = (alg.number, bytes(data))
    pub = _KEYS.get(key)
    if pub is None:
        pub = _KEYS.keep(key, _public_key(alg, key[1]))
    return pub


_KEYS: Kept[tuple[int, bytes], PublicKey] = Kept(4096)


def _public_key(alg: Algorithm, data: bytes) -> PublicKey:
    try:
        if alg.family == "ecdsa":
            assert alg.curve is not None
            if len(data) != 2 * alg.size:
                raise ValueError(f"ECDSA key is {len(data)} bytes, expected {2 * alg.size}")
            return ec.EllipticCurvePublicKey.from_encoded_point(alg.curve(), b"\x04" + data)
        if alg.family == "eddsa":
            cls = ed25519.Ed25519PublicKey if alg.number == 15 else ed448.Ed448PublicKey
            return cls.from_public_bytes(data)
        if alg.family == "rsa":
            if data[0] == 0:
                elen = int.from_bytes(data[1:3], "big")
                rest = data[3:]
            else:
                elen = data[0]
                rest = data[1:]
            e = int.from_bytes(rest[:elen], "big")
            n = int.from_bytes(rest[elen:], "big")
            if elen == 0 or n == 0:
                raise ValueError("empty RSA exponent or modulus")
            return rsa.RSAPublicNumbers(e, n).public_key()
    except (ValueError, IndexError) as exc:
        raise InputError(f"malformed algorithm {alg.number} public key: {exc}") from None
    raise InputError(f"algorithm {alg.number} ({alg.mnemonic}) is not supported")


def sign(alg: Algorithm, key: PrivateKey, data: bytes, deterministic: bool = False) -> bytes:
    """Sign `data`; ECDSA may use RFC 6979 deterministic nonces for reproducible output.
    A token's key signs itself (its own nonces)."""
    if isinstance(key, TokenKey):
        return key.sign_dnssec(data)
    if alg.family == "ecdsa":
        assert alg.hash is not None
        der = key.sign(data, ec.ECDSA(alg.hash(), deterministic_signing=deterministic))  # type: ignore[call-arg, union-attr]
        r, s = decode_dss_signature(der)
        return _int_to_bytes(r, alg.size) + _int_to_bytes(s, alg.size)
    if alg.family == "eddsa":
        return key.sign(data)  # type: ignore[call-arg, union-attr]
    if alg.family == "rsa":
        assert alg.hash is not None
        return key.sign(data, padding.PKCS1v15(), alg.hash())  # type: ignore[call-arg, union-attr]
    raise UnsafeRefused(f"algorithm {alg.number} cannot sign")


_ECDSA: dict[int, ec.ECDSA] = {}  # per algorithm: made once, not per signature verified


def verify(alg: Algorithm, pub: PublicKey, signature: bytes, data: bytes) -> bool:
    """True when `signature` verifies over `data` with `pub`."""
    try:
        if alg.family == "ecdsa":
            assert alg.hash is not None
            if len(signature) != 2 * alg.size:
                return False
            r = int.from_bytes(signature[: alg.size], "big")
            s = int.from_bytes(signature[alg.size :], "big")
            ecdsa = _ECDSA.get(alg.number)
            if ecdsa is None:
                ecdsa = _ECDSA[alg.number] = ec.ECDSA(alg.hash())
            pub.verify(encode_dss_signature(r, s), data, ecdsa)  # type: ignore[call-arg, union-attr]
        elif alg.family == "eddsa":
            pub.verify(signature, data)  # type: ignore[call-arg, union-attr]
        elif alg.family == "rsa":
            assert alg.hash is not None
            pub.verify(signature, data, padding.PKCS1v15(), alg.hash())  # type: ignore[call-arg, union-attr]
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True
