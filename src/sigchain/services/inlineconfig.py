"""The inline-signing settings of a zone in `sigchain serve`'s config (`unsigned`, `keys`,
`policy`) and the signature-refresh settings a key policy gives the server."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sigchain.core.rollover import policy as pol
from sigchain.core.sign.refresh import RefreshPolicy
from sigchain.errors import InputError
from sigchain.services.configtext import Reader

INLINE_KEYS = ("unsigned", "keys", "policy")
REFRESH_BATCH = 500  # RRsets re-signed per refresh tick at most
REFRESH_INTERVAL_MAX = 3600  # seconds between refresh ticks when nothing is due sooner


def refresh_policy(policy: pol.KeyPolicy) -> RefreshPolicy:
    """The signature-refresh settings of a key policy (ValueError when they cannot work)."""
    interval = max(1, min(REFRESH_INTERVAL_MAX, policy.signatures_refresh // 4))
    return RefreshPolicy(policy.signatures_validity, policy.signatures_refresh,
                         policy.signatures_jitter, REFRESH_BATCH, interval)


def policy_file(source: str, base: str) -> str | None:
    """The file a zone's `policy` names (relative to `base`), None for a built-in policy
    (a file of the same name wins)."""
    path = os.path.join(base, source)
    return None if source in pol.BUILTINS and not os.path.exists(path) else path


def load_policy(source: str, base: str) -> pol.KeyPolicy:
    """A built-in policy by name, or a TOML policy file (relative to `base`; a file wins)."""
    path = policy_file(source, base)
    if path is None:
        return pol.builtin(source)
    return read_policy(path)


def read_policy(path: str) -> pol.KeyPolicy:
    """A TOML policy file (InputError naming the file and line when it is bad)."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"no such file, nor a built-in policy (built in: "
                         f"{', '.join(pol.BUILTINS)})", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the policy: {exc}", file=path) from None
    return pol.parse(text, path, os.path.splitext(os.path.basename(path))[0])


def inline_settings(r: Reader, body: Mapping[str, Any], where: str, header: str,
                    hline: int | None) -> tuple[str, str, pol.KeyPolicy, str | None] | None:
    """(unsigned file, key directory, policy, policy file or None for a built-in) of an
    inline-signed zone; None for a zone served from a signed file. Paths are relative to
    the config file's directory."""
    given = [k for k in INLINE_KEYS if k in body]
    if not given:
        return None

    def line(key: str) -> int | None:
        return r.where.find(header, key) or hline

    if "policy" not in body:
        raise r.fail(f"{where}: {given[0]} needs policy (inline signing: policy, unsigned and "
                     "keys together)", line(given[0]))
    if "file" in body:
        raise r.fail(f"{where}: policy signs the zone from unsigned; file (a zone signed "
                     "elsewhere) cannot be given with it", line("file"))
    for key in INLINE_KEYS:
        if not isinstance(body.get(key), str) or not body[key]:
            what = {"unsigned": "the unsigned zone file", "keys": "the key directory",
                    "policy": 'a built-in policy ("default", "ksk-zsk") or a policy file'}[key]
            raise r.fail(f"{where}.{key} must be given: {what}", line(key))
    policy = load_policy(body["policy"], r.base)
    try:
        refresh_policy(policy)
    except ValueError as exc:
        raise r.fail(f"{where}.policy {policy.name}: {exc}", line("policy")) from None
    return (r.file_path(body["unsigned"]), r.file_path(body["keys"]), policy,
            policy_file(body["policy"], r.base))
