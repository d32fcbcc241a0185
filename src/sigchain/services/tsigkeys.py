"""TSIG keys (RFC 8945) from their text parts (`make_key`) and from BIND key files
(`parse_bind_keys`: `key "NAME" { algorithm ALG; secret "BASE64"; };`, as tsig-keygen writes)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

import dns.exception
import dns.name
import dns.tsig

from sigchain.errors import InputError

TSIG_ALGORITHMS: Mapping[str, dns.name.Name] = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}


_TOKEN = re.compile(r"""
    (?P<space>\s+) | (?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/) | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<punct>[{};]) | (?P<word>[^\s{};"\#/]+(?:/(?![/*])[^\s{};"\#/]*)*) | (?P<bad>.)
""", re.VERBOSE | re.DOTALL)


def _tokens(text: str, path: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    line = 1
    for m in _TOKEN.finditer(text):
        kind, value = m.lastgroup or "bad", m.group()
        if kind == "bad":
            raise InputError(f"unexpected character {value!r}", file=path, line=line)
        if kind == "string":
            out.append(("word", value[1:-1].replace('\\"', '"'), line))
        elif kind in ("punct", "word"):
            out.append((kind if kind == "word" else value, value, line))
        line += value.count("\n")
    return out


def parse_bind_keys(text: str, path: str) -> dict[dns.name.Name, dns.tsig.Key]:
    """TSIG keys from BIND `key "NAME" { algorithm ALG; secret "BASE64"; };` statements
    (as `tsig-keygen` writes them; comments in #, // and /* */ style)."""
    toks = _tokens(text, path)
    keys: dict[dns.name.Name, dns.tsig.Key] = {}
    i = 0

    def expect(kind: str, what: str) -> tuple[str, int]:
        nonlocal i
        if i >= len(toks):
            last = toks[-1][2] if toks else 1
            raise InputError(f"unexpected end of file: expected {what}", file=path, line=last)
        k, v, line = toks[i]
        if k != kind:
            raise InputError(f"expected {what}, found {v!r}", file=path, line=line)
        i += 1
        return v, line

    while i < len(toks):
        word, line = expect("word", "key")
        if word != "key":
            raise InputError(f"only key statements are accepted here, found {word!r}",
                             file=path, line=line)
        name_text, name_line = expect("word", "a key name")
        expect("{", "'{'")
        fields: dict[str, tuple[str, int]] = {}
        while i < len(toks) and toks[i][0] != "}":
            opt, opt_line = expect("word", "algorithm or secret")
            if opt not in ("algorithm", "secret"):
                raise InputError(f"unknown key option {opt!r}", file=path, line=opt_line)
            value, _ = expect("word", f"a value for {opt}")
            expect(";", "';'")
            fields[opt] = (value, opt_line)
        expect("}", "'}'")
        expect(";", "';' after '}'")
        for needed in ("algorithm", "secret"):
            if needed not in fields:
                raise InputError(f"key {name_text!r} has no {needed}", file=path, line=name_line)
        try:
            key = make_key(name_text, fields["algorithm"][0], fields["secret"][0])
        except ValueError as exc:
            raise InputError(str(exc), file=path, line=fields["secret"][1]
                             if "secret" in str(exc) else fields["algorithm"][1]) from None
        if key.name in keys:
            raise InputError(f"key {name_text!r} defined twice", file=path, line=name_line)
        keys[key.name] = key
    return keys


def make_key(name: str, algorithm: str, secret: str) -> dns.tsig.Key:
    """A dnspython TSIG key from its text parts; ValueError naming what is wrong (never
    showing the secret)."""
    try:
        key_name = dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise ValueError(f"bad key name {name!r}: {exc}") from None
    alg = TSIG_ALGORITHMS.get(algorithm.lower().rstrip("."))
    if alg is None:
        raise ValueError(f"key {name!r}: unsupported algorithm {algorithm!r} "
                         f"(expected one of {', '.join(TSIG_ALGORITHMS)})")
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"key {name!r}: the secret is not valid base64") from None
    if not raw:
        raise ValueError(f"key {name!r}: the secret is empty")
    return dns.tsig.Key(key_name, raw, alg)
