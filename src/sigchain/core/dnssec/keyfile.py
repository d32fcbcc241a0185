"""BIND key-file formats as text (pure): `K<zone>.+AAA+TTTTT.key` and `.private` v1.3."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rrset
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.algorithms import Algorithm, PrivateKey, TokenKey
from sigchain.core.dnssec.timefmt import format_ctime, format_timestamp14, parse_timestamp14
from sigchain.errors import InputError
from sigchain.model.keys import FLAG_REVOKE, FLAG_SEP, TIMING_FIELDS, KeyPair, KeyTiming

_RSA_FIELDS = (
    "Modulus", "PublicExponent", "PrivateExponent", "Prime1", "Prime2",
    "Exponent1", "Exponent2", "Coefficient",
)


def basename(zone: dns.name.Name, algorithm: int, key_tag: int) -> str:
    """`Kexample.test.+013+08596`, exactly as BIND names key files."""
    return f"K{zone.to_text().lower()}+{algorithm:03d}+{key_tag:05d}"


def _b64(value: int | bytes) -> str:
    if isinstance(value, int):
        value = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return base64.b64encode(value).decode("ascii")


def private_to_text(alg: Algorithm, key: PrivateKey, timing: KeyTiming) -> str:
    """The `.private` file in BIND's Private-key-format v1.3."""
    lines = ["Private-key-format: v1.3", f"Algorithm: {alg.number} ({alg.mnemonic})"]
    if isinstance(key, TokenKey):  # in a token: a reference, no key material (as BIND's HSM keys)
        lines.append(f"Label: {key.label}")
    elif alg.family == "ecdsa":
        d = key.private_numbers().private_value  # type: ignore[union-attr]
        lines.append(f"PrivateKey: {_b64(d.to_bytes(alg.size, 'big'))}")
    elif alg.family == "eddsa":
        from cryptography.hazmat.primitives import serialization

        raw = key.private_bytes(  # type: ignore[union-attr]
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        lines.append(f"PrivateKey: {_b64(raw)}")
    elif alg.family == "rsa":
        n = key.private_numbers()  # type: ignore[union-attr]
        values = (n.public_numbers.n, n.public_numbers.e, n.d, n.p, n.q, n.dmp1, n.dmq1, n.iqmp)
        lines += [f"{name}: {_b64(v)}" for name, v in zip(_RSA_FIELDS, values, strict=True)]
    else:
        raise InputError(f"algorithm {alg.number} has no private key format")
    return "\n".join(lines + _private_stamps(timing)) + "\n"


def _private_stamps(timing: KeyTiming) -> list[str]:
    """The timing lines of a `.private` file (`Publish: YYYYMMDDHHMMSS`), in BIND's order."""
    return [f"{label}: {format_timestamp14(value)}" for attr, label in TIMING_FIELDS
            if (value := getattr(timing, attr)) is not None]


def _public_stamps(timing: KeyTiming) -> list[str]:
    """The timing comments of a `.key` file, as dnssec-keygen writes them."""
    return [f"; {label}: {format_timestamp14(value)} ({format_ctime(value)})"
            for attr, label in TIMING_FIELDS if (value := getattr(timing, attr)) is not None]


class _PrivateFields:
    """A `.private` file's 'Field: value' lines, each with its line number."""

    def __init__(self, text: str, filename: str) -> None:
        self.filename = filename
        self.fields: dict[str, tuple[str, int]] = {}
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith(";"):
                continue
            if ":" not in line:
                raise InputError("expected 'Field: value'", file=filename, line=lineno)
            k, v = line.split(":", 1)
            self.fields[k.strip()] = (v.strip(), lineno)

    def need(self, name: str) -> tuple[str, int]:
        if name not in self.fields:
            raise InputError(f"missing {name!r} field", file=self.filename, line=None)
        return self.fields[name]

    def blob(self, name: str) -> bytes:
        value, ln = self.need(name)
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise InputError(f"{name} is not valid base64", file=self.filename, line=ln) from None

    def integer(self, name: str) -> int:
        return int.from_bytes(self.blob(name), "big")


def _algorithm(f: _PrivateFields) -> Algorithm:
    """The format check and the Algorithm field."""
    fmt, lineno = f.need("Private-key-format")
    if not fmt.startswith("v1."):
        raise InputError(f"unsupported private key format {fmt!r}", file=f.filename, line=lineno)
    alg_text, lineno = f.need("Algorithm")
    try:
        return algorithms.get(int(alg_text.split()[0]))
    except (ValueError, IndexError):
        raise InputError(f"bad Algorithm field {alg_text!r}", file=f.filename, line=lineno) from None
    except InputError as exc:
        raise InputError(exc.message, file=f.filename, line=lineno) from None


def _private_key(alg: Algorithm, f: _PrivateFields) -> PrivateKey:
    """The key from its fields: the ECDSA scalar, the EdDSA seed, or the RSA numbers."""
    try:
        if alg.family == "ecdsa":
            assert alg.curve is not None
            return ec.derive_private_key(f.integer("PrivateKey"), alg.curve())
        if alg.family == "eddsa":
            cls = ed25519.Ed25519PrivateKey if alg.number == 15 else ed448.Ed448PrivateKey
            return cls.from_private_bytes(f.blob("PrivateKey"))
        if alg.family == "rsa":
            n, e, d, p, q, dmp1, dmq1, iqmp = (f.integer(name) for name in _RSA_FIELDS)
            return rsa.RSAPrivateNumbers(
                p, q, d, dmp1, dmq1, iqmp, rsa.RSAPublicNumbers(e, n)
            ).private_key()
        raise InputError(f"algorithm {alg.number} ({alg.mnemonic}) is not supported", file=f.filename)
    except ValueError as exc:
        raise InputError(f"invalid private key: {exc}", file=f.filename) from None


def _timing(f: _PrivateFields) -> KeyTiming:
    """BIND's timing metadata (Publish, Activate, ...), where present."""
    times: dict[str, int] = {}
    for attr, label in TIMING_FIELDS:
        if label in f.fields:
            value, ln = f.fields[label]
            try:
                times[attr] = parse_timestamp14(value)
            except InputError as exc:
                raise InputError(exc.message, file=f.filename, line=ln) from None
    return KeyTiming(**times)


@dataclass(frozen=True)
class KeyLabel:
    """A `.private` file that names a key in a token (`Label:`, an RFC 7512 URI) instead of
    holding it; the key store opens it."""

    label: str
    line: int


_KEY_MATERIAL = ("PrivateKey", "PrivateExponent")


def private_from_text(
    text: str, filename: str
) -> tuple[Algorithm, PrivateKey | KeyLabel, KeyTiming]:
    """Parse a BIND `.private` file (v1.2/v1.3); errors name the file and line. A file with
    a `Label:` and no key material gives the KeyLabel."""
    fields = _PrivateFields(text, filename)
    alg = _algorithm(fields)
    if "Label" in fields.fields and not any(f in fields.fields for f in _KEY_MATERIAL):
        label, lineno = fields.fields["Label"]
        return alg, KeyLabel(label, lineno), _timing(fields)
    return alg, _private_key(alg, fields), _timing(fields)


def make_dnskey(alg: Algorithm, key: PrivateKey, flags: int) -> dns.rdtypes.ANY.DNSKEY.DNSKEY:
    return dns.rdtypes.ANY.DNSKEY.DNSKEY(
        dns.rdataclass.IN, dns.rdatatype.DNSKEY, flags, 3, alg.number,
        algorithms.public_key_bytes(alg, key),
    )


def with_flags(rd: dns.rdtypes.ANY.DNSKEY.DNSKEY, flags: int) -> dns.rdtypes.ANY.DNSKEY.DNSKEY:
    """The same key with other flags (and so, most often, another tag)."""
    return dns.rdtypes.ANY.DNSKEY.DNSKEY(rd.rdclass, rd.rdtype, flags, rd.protocol, rd.algorithm,
                                         rd.key)


def revoked(rd: dns.rdtypes.ANY.DNSKEY.DNSKEY) -> dns.rdtypes.ANY.DNSKEY.DNSKEY:
    """The DNSKEY as published once revoked (RFC 5011 §2.1): the REVOKE bit set, so a new tag."""
    return with_flags(rd, rd.flags | FLAG_REVOKE)


def public_to_text(kp: KeyPair) -> str:
    """The `.key` file as dnssec-keygen writes it: comment header, then the DNSKEY line."""
    kind = "key-signing" if kp.flags & FLAG_SEP else "zone-signing"
    lines = [f"; This is a {kind} key, keyid {kp.key_tag}, for {kp.zone.to_text()}",
             *_public_stamps(kp.timing)]
    ttl = f"{kp.ttl} " if kp.ttl is not None else ""
    lines.append(f"{kp.zone.to_text()} {ttl}IN DNSKEY {kp.dnskey.to_text()}")
    return "\n".join(lines) + "\n"


def public_from_text(
    text: str, filename: str
) -> tuple[dns.name.Name, int | None, dns.rdtypes.ANY.DNSKEY.DNSKEY]:
    """Parse a `.key` file: one DNSKEY record, comments allowed, TTL optional."""
    record = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if record is not None:
            raise InputError("more than one record in key file", file=filename, line=lineno)
        record = (line, lineno)
    if record is None:
        raise InputError("no DNSKEY record in key file", file=filename)
    line, lineno = record
    tokens = line.split()
    ttl: int | None = None
    try:
        owner = dns.name.from_text(tokens[0])
        rest = tokens[1:]
        if rest and rest[0].isdigit():
            ttl = int(rest[0])
            rest = rest[1:]
        if rest and rest[0].upper() == "IN":
            rest = rest[1:]
        if not rest or rest[0].upper() != "DNSKEY":
            raise InputError("expected a DNSKEY record", file=filename, line=lineno)
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY, " ".join(rest[1:]))
    except dns.exception.DNSException as exc:
        raise InputError(f"bad DNSKEY record: {exc}", file=filename, line=lineno) from None
    return owner, ttl, rdata  # type: ignore[return-value]


_LABELS = {label for _, label in TIMING_FIELDS}


def with_timing_private(text: str, timing: KeyTiming) -> str:
    """A `.private` file's text with its timing metadata replaced by `timing` (the key fields
    untouched, so any key store's private file keeps what it holds)."""
    kept = [line for line in text.splitlines()
            if line.split(":", 1)[0].strip() not in _LABELS or ":" not in line]
    return "\n".join(kept + _private_stamps(timing)) + "\n"


def with_timing_public(text: str, timing: KeyTiming, ttl: int | None = None) -> str:
    """A `.key` file's text with its timing comments replaced by `timing`, as dnssec-keygen
    writes them (after the header comment, before the DNSKEY record); with `ttl`, the
    record written again with that TTL."""
    lines = text.splitlines()
    comments = [ln for ln in lines if ln.startswith(";")
                and ln[1:].split(":", 1)[0].strip() not in _LABELS]
    records = [ln for ln in lines if ln.strip() and not ln.startswith(";")]
    if ttl is not None:
        owner, _, dnskey = public_from_text(text, "")
        records = [f"{owner.to_text()} {ttl} IN DNSKEY {dnskey.to_text()}"]
    return "\n".join(comments[:1] + _public_stamps(timing) + comments[1:] + records) + "\n"
