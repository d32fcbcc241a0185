"""BIND-compatible key directory: read and write `K<zone>.+AAA+TTTTT.key/.private` pairs."""

from __future__ import annotations

import glob
import os

import dns.dnssec
import dns.name

from sigchain.core.dnssec import algorithms, keyfile
from sigchain.edge import pkcs11store
from sigchain.edge.zonefile import read_text, write_atomic
from sigchain.errors import InputError, OperationalError, SigchainError, UnsafeRefused
from sigchain.model.keys import FLAG_REVOKE, KeyPair, KeyRole, KeyTiming


def _read(path: str) -> str:
    return read_text(path, encoding="ascii", what="key file")


def key_base(path: str) -> str:
    """Accept `Kname+alg+tag`, `.key` or `.private` and return the base path."""
    for ext in (".key", ".private"):
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def load_public(path: str) -> tuple[dns.name.Name, int | None, object]:
    base = key_base(path)
    kfile = base + ".key"
    return keyfile.public_from_text(_read(kfile), kfile)


def check_private_mode(pfile: str, force: bool = False) -> None:
    """Refuse a private key file group or others may read or write, as OpenSSH refuses a
    loose private key (UnsafeRefused, exit 4; `force` overrides)."""
    try:
        mode = os.stat(pfile).st_mode & 0o777
    except OSError:
        return  # reading it says what is wrong
    if mode & 0o077 and not force:
        raise UnsafeRefused(
            f"permissions {mode:04o} are too open: group and others must not read a private key; "
            f"run: chmod 600 {pfile}  (--force overrides)", file=pfile,
        )


def check_key_directory(directory: str, force: bool = False) -> None:
    """Refuse a key directory group or others may write to: they could swap the keys."""
    try:
        mode = os.stat(directory).st_mode & 0o7777
    except OSError:
        return
    if mode & 0o022 and not force:
        raise UnsafeRefused(
            f"permissions {mode & 0o777:04o} are too open: group and others must not write to a key "
            f"directory; run: chmod go-w {directory}  (--force overrides)", file=directory,
        )


def load_pair(path: str, force: bool = False) -> KeyPair:
    """Load a key pair and check that the private half matches the published DNSKEY. A
    private key file group or others can read is refused unless `force`."""
    base = key_base(path)
    kfile, pfile = base + ".key", base + ".private"
    check_private_mode(pfile, force)
    owner, ttl, dnskey = keyfile.public_from_text(_read(kfile), kfile)
    alg, private, timing = keyfile.private_from_text(_read(pfile), pfile)
    if isinstance(private, keyfile.KeyLabel):  # the key is in a PKCS#11 token
        private = pkcs11store.open_key(private.label, alg, pfile, private.line)
    if alg.number != dnskey.algorithm:  # type: ignore[attr-defined]
        raise InputError(
            f"algorithm {alg.number} in .private differs from the DNSKEY's "
            f"{dnskey.algorithm}", file=pfile,  # type: ignore[attr-defined]
        )
    if algorithms.public_key_bytes(alg, private) != dnskey.key:  # type: ignore[attr-defined]
        raise InputError("private key does not match the DNSKEY in the .key file", file=pfile)
    return KeyPair(owner, alg.number, dnskey, private, timing, ttl, base)  # type: ignore[arg-type]


def zone_key_paths(directory: str, origin: dns.name.Name) -> list[str]:
    pattern = os.path.join(glob.escape(directory), f"K{origin.to_text().lower()}+*.key")
    found = set(glob.glob(pattern))
    # Names are case-insensitive; accept any case in the file name.
    for path in glob.glob(os.path.join(glob.escape(directory), "K*.key")):
        if os.path.basename(path).lower().startswith(f"k{origin.to_text().lower()}+"):
            found.add(path)
    return sorted(found)


def load_zone_keys(directory: str, origin: dns.name.Name, *, force: bool = False) -> list[KeyPair]:
    """Every key pair in `directory` for `origin`; a key file for another zone is an error.
    A directory others can write to, or a private key they can read, is refused unless `force`."""
    if not os.path.isdir(directory):
        raise InputError("key directory does not exist", file=directory)
    check_key_directory(directory, force)
    paths = zone_key_paths(directory, origin)
    if not paths:
        others = sorted(
            {os.path.basename(p)[1:].rsplit("+", 2)[0] for p in glob.glob(os.path.join(glob.escape(directory), "K*.key"))}
        )
        hint = f" (it has keys for: {', '.join(others)})" if others else ""
        raise InputError(f"no keys for zone {origin} in the key directory{hint}", file=directory)
    keys = []
    for path in paths:
        kp = load_pair(path, force)
        if kp.zone != origin:
            raise InputError(
                f"key file is named for {origin} but its DNSKEY belongs to {kp.zone}", file=path
            )
        keys.append(kp)
    return keys


def existing_tags(directory: str, origin: dns.name.Name) -> set[tuple[int, int]]:
    """(algorithm, key tag) pairs already used in `directory` for `origin`: each key's tag, and
    the tag it has with its REVOKE bit flipped (revoked, or for a revoked key, as it was), as
    dnssec-keygen counts a collision: no new key may take a tag an old one has or will have."""
    out = set()
    for path in zone_key_paths(directory, origin):
        parts = os.path.basename(path)[:-4].rsplit("+", 2)
        try:
            out.add((int(parts[1]), int(parts[2])))
        except (IndexError, ValueError):
            continue
        try:
            rd = keyfile.public_from_text(_read(path), path)[2]
        except (SigchainError, OSError):
            continue  # what its name says is counted; reading it fails elsewhere, with why
        out.add((rd.algorithm, dns.dnssec.key_id(keyfile.with_flags(rd, rd.flags ^ FLAG_REVOKE))))
    return out


def write_pair(directory: str, kp: KeyPair, alg: algorithms.Algorithm, pending: bool = False) -> str:
    """Write `.key` (0644) and `.private` (0600); never overwrite. Returns the base name.
    `pending`: under PENDING names, no key yet until `install_pending` (see keymanager.run)."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise OperationalError(f"cannot create key directory: {exc.strerror}", file=directory) from None
    base = keyfile.basename(kp.zone, kp.algorithm, kp.key_tag)
    path = os.path.join(directory, base)
    for ext in (".key", ".private"):
        if os.path.exists(path + ext):
            raise OperationalError("key file already exists", file=path + ext)
    tail = PENDING if pending else ""
    write_atomic(path + ".private" + tail, [keyfile.private_to_text(alg, kp.private, kp.timing)],
                 mode=0o600)
    write_atomic(path + ".key" + tail, [keyfile.public_to_text(kp)], mode=0o644)
    return base


PENDING = ".pending"  # a new key's files until the key state holds the key


def pending_bases(directory: str, origin: dns.name.Name) -> list[str]:
    """The bases (paths without extension) of `origin`'s key files written pending."""
    prefix = f"k{origin.to_text().lower()}+"
    return sorted({p[: -len(PENDING)].rsplit(".", 1)[0]
                   for p in glob.glob(os.path.join(glob.escape(directory), f"K*{PENDING}"))
                   if os.path.basename(p).lower().startswith(prefix)})


def install_pending(base: str) -> None:
    """Give a pending pair its K-file names (`.private` first: a `.key` is never alone)."""
    for ext in (".private", ".key"):
        try:
            os.replace(base + ext + PENDING, base + ext)
        except FileNotFoundError:
            pass  # installed already
        except OSError as exc:
            raise OperationalError(f"cannot rename: {exc.strerror}", file=base + ext) from None


def drop_pending(base: str) -> None:
    """Remove a pending pair (its run failed or died before the state held the key)."""
    delete_pair(base, PENDING)


def new_pair(origin: dns.name.Name, alg: algorithms.Algorithm, role: KeyRole, directory: str,
             timing: KeyTiming, ttl: int | None = None, bits: int | None = None,
             store: str | None = None, avoid: frozenset[tuple[int, int]] = frozenset()) -> KeyPair:
    """Generate a key pair whose tag (and revoked tag) no key of `origin` in `directory` uses
    yet, as dnssec-keygen does (not written: `write_pair` does that), nor any (algorithm, tag)
    in `avoid`. With `store` (a PKCS#11 URI naming the object) the pair is made inside the
    token."""
    used = existing_tags(directory, origin) | avoid
    for _ in range(100):
        private = algorithms.generate(alg, bits) if store is None else \
            pkcs11store.generate(store, alg, bits)
        dnskey = keyfile.make_dnskey(alg, private, role.flags)
        kp = KeyPair(origin, alg.number, dnskey, private, timing, ttl)
        revoked_tag = dns.dnssec.key_id(keyfile.revoked(dnskey))
        if (alg.number, kp.key_tag) not in used and (alg.number, revoked_tag) not in used:
            return kp
        if store is not None:
            pkcs11store.destroy(private)  # the label is needed for the next try
    raise OperationalError("could not find an unused key tag")


def write_new_pair(directory: str, kp: KeyPair, alg: algorithms.Algorithm,
                   pending: bool = False) -> str:
    """write_pair for a pair just made by new_pair: a key made in a token whose files cannot
    be written is taken out of the token again (nothing half-made)."""
    try:
        return write_pair(directory, kp, alg, pending)
    except BaseException:
        if isinstance(kp.private, pkcs11store.HsmKey):
            pkcs11store.destroy(kp.private)
        raise


def write_timing(base: str, timing: KeyTiming, ttl: int | None = None) -> None:
    """Replace the timing metadata of the key pair at `base`, and with `ttl` its DNSKEY
    record's TTL (`.private` keeps mode 0600; each file written to a temp file and renamed)."""
    kfile, pfile = base + ".key", base + ".private"
    private = keyfile.with_timing_private(_read(pfile), timing)
    public = keyfile.with_timing_public(_read(kfile), timing, ttl)
    write_atomic(pfile, [private], mode=0o600)
    write_atomic(kfile, [public], mode=0o644)


def delete_pair(base: str, tail: str = "") -> None:
    """Remove a key pair's files (purge-keys); a file already gone is not an error."""
    for ext in (".key", ".private"):
        try:
            os.unlink(base + ext + tail)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OperationalError(f"cannot delete: {exc.strerror}", file=base + ext) from None
