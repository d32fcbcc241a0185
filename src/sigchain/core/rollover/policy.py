"""The key and signing policy (pure): BIND `dnssec-policy` options read from TOML text, the
built-in policies, and frozen dataclasses the timings and the planner read.

Defaults are BIND 9.18's built-in `dnssec-policy "default"` as `named -C` prints it (9.18.49):
dnskey-ttl 3600, publish-safety 3600, retire-safety 3600, purge-keys P90D, signatures-jitter
PT12H, signatures-refresh P5D, signatures-validity P14D, signatures-validity-dnskey P14D,
max-zone-ttl 86400, zone-propagation-delay 300, parent-ds-ttl 86400, parent-propagation-delay
3600; cds-digest-types SHA-256 and cdnskey yes as BIND 9.20. Unlike BIND's default (NSEC),
both built-ins deny with NSEC3 at RFC 9276 §3.1's values: 0 extra iterations, no salt.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from sigchain import tomltext
from sigchain.core.dnssec import algorithms
from sigchain.core.rollover import durations
from sigchain.errors import InputError

ROLES = ("ksk", "zsk", "csk")
DIGEST_NAMES = {"sha-256": 2, "sha256": 2, "sha-384": 4, "sha384": 4, "sha-1": 1, "sha1": 1}
DAY = 86400
# Short names BIND's dnssec-policy also takes (as in `csk lifetime unlimited algorithm ecdsa256`).
ALGORITHM_ALIASES = {"ecdsa256": 13, "ecdsa384": 14}


class RoleMixin:
    """What a key of this role signs: a KSK the DNSKEY RRset, a ZSK the zone, a CSK both."""

    role: str

    @property
    def signs_dnskey(self) -> bool:
        return self.role in ("ksk", "csk")

    @property
    def signs_zone(self) -> bool:
        return self.role in ("zsk", "csk")


@dataclass(frozen=True)
class KeySpec(RoleMixin):
    """One `keys` entry: a role, an algorithm and a lifetime (None = unlimited)."""

    role: str
    algorithm: int
    lifetime: int | None = None
    store: str | None = None


@dataclass(frozen=True)
class Nsec3Param:
    iterations: int = 0
    salt_length: int = 0
    optout: bool = False


@dataclass(frozen=True)
class KeyPolicy:
    """A `dnssec-policy`; durations in seconds. `nsec3` None means NSEC."""

    name: str
    keys: tuple[KeySpec, ...] = (KeySpec("csk", 13),)
    dnskey_ttl: int = 3600
    publish_safety: int = 3600
    retire_safety: int = 3600
    purge_keys: int = 90 * DAY
    signatures_validity: int = 14 * DAY
    signatures_validity_dnskey: int = 14 * DAY
    signatures_refresh: int = 5 * DAY
    signatures_jitter: int = 12 * 3600
    max_zone_ttl: int = DAY
    zone_propagation_delay: int = 300
    parent_ds_ttl: int = DAY
    parent_propagation_delay: int = 3600
    cds_digest_types: tuple[int, ...] = (2,)
    cdnskey: bool = True
    nsec3: Nsec3Param | None = field(default_factory=Nsec3Param)
    insecure: bool = False  # go unsigned: CDS/CDNSKEY delete form, DS out, then keys out


# the policy values that say how long cached copies live: lowered, the old value still holds
# for the copies made under it (RFC 7583's TTLkey, TTLsig, TTLds, Dprp are the cached ones')
CACHE_FIELDS = ("dnskey_ttl", "max_zone_ttl", "parent_ds_ttl", "zone_propagation_delay",
                "parent_propagation_delay")
Carried = dict[str, tuple[int, int]]  # field → (value still assumed, until when)


def carried(kept: Carried, previous: KeyPolicy | None, p: KeyPolicy, now: int) -> Carried:
    """The cache values a policy change lowered, still assumed until the copies made under
    the old ones have expired (as Knot's saved key and zone TTLs): `kept` (from earlier runs)
    without those past their time, and for each value `p` lowers from `previous`, the old one
    until now + it + the old propagation delays."""
    out = {f: (v, until) for f, (v, until) in kept.items() if until > now and f in CACHE_FIELDS}
    if previous is None:
        return out
    grace = max(previous.zone_propagation_delay, previous.parent_propagation_delay)
    for f in CACHE_FIELDS:
        old, new = getattr(previous, f), getattr(p, f)
        if new < old:
            value, until = out.get(f, (0, 0))
            out[f] = (max(value, old), max(until, now + old + grace))
    return out


def in_effect(p: KeyPolicy, kept: Carried) -> KeyPolicy:
    """`p` with each value `kept` still assumes, where that is the larger: what the planner
    times every rise and fall with."""
    raised = {f: v for f, (v, _) in kept.items() if f in CACHE_FIELDS and v > getattr(p, f)}
    return dataclasses.replace(p, **raised) if raised else p


BUILTINS: dict[str, KeyPolicy] = {
    "default": KeyPolicy("default"),
    "ksk-zsk": KeyPolicy("ksk-zsk", keys=(KeySpec("ksk", 13, 365 * DAY),
                                          KeySpec("zsk", 13, 90 * DAY))),
}

_DURATIONS = ("dnskey-ttl", "publish-safety", "retire-safety", "purge-keys",
              "signatures-validity", "signatures-validity-dnskey", "signatures-refresh",
              "signatures-jitter", "max-zone-ttl", "zone-propagation-delay", "parent-ds-ttl",
              "parent-propagation-delay")
_TOP = frozenset((*_DURATIONS, "cds-digest-types", "cdnskey", "nsec3param", "nsec", "keys",
                  "insecure"))
_KEY_FIELDS = frozenset(("role", "algorithm", "lifetime", "store"))
_NSEC3_FIELDS = frozenset(("iterations", "salt-length", "optout"))


class _Source:
    """The policy text, to name the line of a semantic error by its key path."""

    def __init__(self, text: str, file: str):
        self.where = tomltext.Where(text)
        self.file = file

    def line_of(self, key: str, table: str | None = None, nth: int = 0) -> int | None:
        """Line of `key = …`, inside the `nth` `[[table]]` (or `[table]`) when given; the
        table's header (or its inline `table = {…}`) when `key` is the table."""
        if table is None:
            return self.where.find(None, key)
        header = rf"^\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$"
        if key == table:
            return self.where.find(header, None, nth) or self.where.find(None, key)
        return self.where.find(header, key, nth)

    def error(self, path: str, problem: str, line: int | None) -> InputError:
        return InputError(f"{path}: {problem}", file=self.file, line=line)


def locate(text: str, file: str, path: str) -> int | None:
    """The line of a key path in policy text (`keys[1].store`, `keys`, `dnskey-ttl`), to name
    it in a problem found after parsing; None when the text does not have it."""
    src = _Source(text, file)
    entry = re.fullmatch(r"keys\[(\d+)\]\.([\w-]+)", path)
    if entry:
        return src.line_of(entry.group(2), "keys", int(entry.group(1)))
    return src.line_of(path, "keys" if path == "keys" else None)


def builtin(name: str) -> KeyPolicy:
    try:
        return BUILTINS[name]
    except KeyError:
        raise InputError(f"no built-in policy {name!r} (built in: "
                         f"{', '.join(BUILTINS)})") from None


def parse(text: str, file: str, name: str) -> KeyPolicy:
    """A policy from TOML text; InputError naming file, line and key path on any problem."""
    data = tomltext.loads(text, file)
    src = _Source(text, file)
    for key in data:
        if key not in _TOP:
            raise src.error(key, f"unknown option (known: {', '.join(sorted(_TOP))})",
                            src.line_of(key))
    values: dict[str, Any] = {}
    for key in _DURATIONS:
        if key in data:
            values[key.replace("-", "_")] = _duration(src, key, data[key], src.line_of(key))
    if "cdnskey" in data:
        values["cdnskey"] = _bool(src, "cdnskey", data["cdnskey"], src.line_of("cdnskey"))
    if "insecure" in data:
        values["insecure"] = _bool(src, "insecure", data["insecure"], src.line_of("insecure"))
    if "cds-digest-types" in data:
        values["cds_digest_types"] = _digests(src, data["cds-digest-types"])
    values["nsec3"] = _denial(src, data)
    if "keys" in data:
        values["keys"] = _keys(src, data["keys"])
    return KeyPolicy(name, **values)


def _duration(src: _Source, path: str, value: object, line: int | None) -> int:
    try:
        return durations.parse(value)
    except InputError as exc:
        raise src.error(path, exc.message, line) from None


def _bool(src: _Source, path: str, value: object, line: int | None) -> bool:
    if not isinstance(value, bool):
        raise src.error(path, f"expected true or false, not {value!r}", line)
    return value


def _int(src: _Source, path: str, value: object, line: int | None, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise src.error(path, f"expected an integer 0..{top}, not {value!r}", line)
    return value


def _digests(src: _Source, value: object) -> tuple[int, ...]:
    line = src.line_of("cds-digest-types")
    if not isinstance(value, list) or not value:
        raise src.error("cds-digest-types", "expected a list such as [\"sha-256\"]", line)
    out = []
    for item in value:
        number = DIGEST_NAMES.get(item.lower()) if isinstance(item, str) else item
        if isinstance(number, bool) or number not in (1, 2, 4):
            raise src.error("cds-digest-types", f"unknown digest type {item!r} (sha-256, "
                            "sha-384, or 2, 4)", line)
        out.append(number)
    return tuple(dict.fromkeys(out))


def _denial(src: _Source, data: dict[str, Any]) -> Nsec3Param | None:
    if "nsec" in data and "nsec3param" in data:
        raise src.error("nsec", "give nsec or nsec3param, not both", src.line_of("nsec"))
    if "nsec" in data:
        if _bool(src, "nsec", data["nsec"], src.line_of("nsec")):
            return None
        return Nsec3Param()
    table = data.get("nsec3param", {})
    line = src.line_of("nsec3param", "nsec3param")
    if not isinstance(table, dict):
        raise src.error("nsec3param", "expected a table [nsec3param]", line)
    for key in table:
        if key not in _NSEC3_FIELDS:
            raise src.error(f"nsec3param.{key}", "unknown option (known: iterations, "
                            "salt-length, optout)", src.line_of(key, "nsec3param"))
    return Nsec3Param(
        iterations=_int(src, "nsec3param.iterations", table.get("iterations", 0),
                        src.line_of("iterations", "nsec3param"), 65535),
        salt_length=_int(src, "nsec3param.salt-length", table.get("salt-length", 0),
                         src.line_of("salt-length", "nsec3param"), 255),
        optout=_bool(src, "nsec3param.optout", table.get("optout", False),
                     src.line_of("optout", "nsec3param")),
    )


def _keys(src: _Source, value: object) -> tuple[KeySpec, ...]:
    if not isinstance(value, list):
        raise src.error("keys", "expected [[keys]] tables", src.line_of("keys"))
    return tuple(_key(src, i, entry) for i, entry in enumerate(value))


def _key(src: _Source, i: int, entry: object) -> KeySpec:
    path = f"keys[{i}]"

    def line(key: str) -> int | None:
        return src.line_of(key, "keys", i)

    if not isinstance(entry, dict):
        raise src.error(path, "expected a table with role, algorithm, lifetime", line("keys"))
    for key in entry:
        if key not in _KEY_FIELDS:
            raise src.error(f"{path}.{key}", "unknown option (known: algorithm, lifetime, "
                            "role, store)", line(key))
    role = entry.get("role")
    if role not in ROLES:
        raise src.error(f"{path}.role", f"expected \"ksk\", \"zsk\" or \"csk\", not {role!r}",
                        line("role") or line("keys"))
    alg_value = entry.get("algorithm", 13)
    if isinstance(alg_value, str):
        alg_value = ALGORITHM_ALIASES.get(alg_value.lower(), alg_value)
    try:
        alg = algorithms.from_text(str(alg_value)) if not isinstance(alg_value, bool) else None
    except InputError as exc:
        raise src.error(f"{path}.algorithm", exc.message, line("algorithm")) from None
    if alg is None or alg.family == "none":
        raise src.error(f"{path}.algorithm", f"algorithm {alg_value!r} cannot sign",
                        line("algorithm"))
    lifetime = entry.get("lifetime", "unlimited")
    seconds = None if lifetime == "unlimited" else _duration(
        src, f"{path}.lifetime", lifetime, line("lifetime"))
    if seconds == 0:
        raise src.error(f"{path}.lifetime", "a zero lifetime: use \"unlimited\"",
                        line("lifetime"))
    store = entry.get("store")
    if store is not None and not isinstance(store, str):
        raise src.error(f"{path}.store", f"expected a string, not {store!r}", line("store"))
    if store is not None and store != "file" and not store.startswith("pkcs11:"):
        raise src.error(f"{path}.store", f"key store {store!r} is not supported (\"file\" or "
                        "a pkcs11: URI, RFC 7512)", line("store"))
    return KeySpec(role, alg.number, seconds, store)
