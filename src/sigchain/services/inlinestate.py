"""The inline signer's state beside the keys (SQLite, `sigchain-inline.sqlite3`): per zone the
last serial served, the NSEC3 salt, a journal of the versions served, and the RRsets that
dynamic updates changed (with the unsigned file's RRset they replaced), one transaction per
change, so a restart never serves a serial below one served before nor loses an update."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

import dns.name

from sigchain.core.zone.records import Key, RRsetRec, key_of, key_wire
from sigchain.core.zone.wire import key_from_labels, read_name
from sigchain.errors import InputError, OperationalError

DB_NAME = "sigchain-inline.sqlite3"
SCHEMA_VERSION = 2
JOURNAL_KEPT = 100  # journal rows kept per zone
_SCHEMA = """
CREATE TABLE IF NOT EXISTS zone (zone TEXT PRIMARY KEY, serial INTEGER NOT NULL, salt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (zone TEXT NOT NULL, serial INTEGER NOT NULL, at INTEGER NOT NULL,
    what TEXT NOT NULL, removed INTEGER NOT NULL, added INTEGER NOT NULL);
"""
# Version 2: an RRset a dynamic update changed — `value` what it is now (NULL: deleted), `base`
# the digest of the unsigned file's RRset it replaced ('' when the file had none).
_SCHEMA_2 = """
CREATE TABLE IF NOT EXISTS dynamic (zone TEXT NOT NULL, owner TEXT NOT NULL,
    rdtype INTEGER NOT NULL, base TEXT NOT NULL, value TEXT, PRIMARY KEY (zone, owner, rdtype));
"""

Ident = tuple[Key, int]
# (base digest, value) per RRset an update changed
Dynamic = dict[Ident, tuple[str, RRsetRec | None]]


@dataclass(frozen=True)
class InlineState:
    serial: int | None  # the last serial served (None: never served from this directory)
    salt: bytes | None


def _connect(directory: str) -> sqlite3.Connection:
    path = os.path.join(directory, DB_NAME)
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version in (0, 1):  # new, or before updates were kept: made in one transaction
            conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} {_SCHEMA_2} "
                               f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        elif version != SCHEMA_VERSION:
            conn.close()
            raise InputError(f"inline state schema version {version}; this sigchain reads "
                             f"version {SCHEMA_VERSION}", file=path)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"not a sigchain inline state database: {exc}", file=path) from None
    except OSError as exc:
        raise OperationalError(f"cannot open the inline state: {exc}", file=path) from None
    return conn


def load(directory: str, zone: str) -> InlineState:
    conn = _connect(directory)
    try:
        row = conn.execute("SELECT serial, salt FROM zone WHERE zone = ?", (zone,)).fetchone()
    finally:
        conn.close()
    if row is None:
        return InlineState(None, None)
    return InlineState(int(row[0]), bytes.fromhex(row[1]))


def digest(r: RRsetRec | None) -> str:
    """What identifies an RRset's records (TTL and rdata): '' for none."""
    if r is None:
        return ""
    h = hashlib.sha256(r.ttl.to_bytes(4, "big"))
    for w in r.wires:
        h.update(len(w).to_bytes(2, "big") + w)
    return h.hexdigest()


def _encode(r: RRsetRec | None) -> str | None:
    if r is None:
        return None
    return json.dumps({"owner": r.owner, "ttl": r.ttl, "wires": [w.hex() for w in r.wires],
                       "texts": list(r.texts)})


def _decode(rdtype: int, text: str | None) -> RRsetRec | None:
    if text is None:
        return None
    d = json.loads(text)
    return RRsetRec(key_of(dns.name.from_text(d["owner"])), d["owner"], rdtype, int(d["ttl"]),
                    tuple(bytes.fromhex(w) for w in d["wires"]), tuple(d["texts"]))


def load_dynamic(directory: str, zone: str) -> Dynamic:
    """The RRsets dynamic updates changed, as `record` kept them (none before the first)."""
    if not os.path.exists(os.path.join(directory, DB_NAME)):
        return {}
    conn = _connect(directory)
    try:
        rows = conn.execute("SELECT owner, rdtype, base, value FROM dynamic WHERE zone = ?",
                            (zone,)).fetchall()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"cannot read the inline state: {exc}",
                         file=os.path.join(directory, DB_NAME)) from None
    finally:
        conn.close()
    out: Dynamic = {}
    for owner, rdtype, base, value in rows:
        key = key_from_labels(read_name(bytes.fromhex(owner), 0)[0])
        out[(key, int(rdtype))] = (base, _decode(int(rdtype), value))
    return out


def _forget(conn: sqlite3.Connection, zone: str, forget: tuple[Ident, ...]) -> None:
    conn.executemany("DELETE FROM dynamic WHERE zone = ? AND owner = ? AND rdtype = ?",
                     [(zone, key_wire(k).hex(), t) for k, t in forget])


def forget_dynamic(directory: str, zone: str, forget: tuple[Ident, ...]) -> None:
    """The unsigned file changed these RRsets after updates did: the file's content counts."""
    conn = _connect(directory)
    try:
        with conn:
            _forget(conn, zone, forget)
    except sqlite3.DatabaseError as exc:
        raise OperationalError(f"cannot write the inline state: {exc}",
                               file=os.path.join(directory, DB_NAME)) from None
    finally:
        conn.close()


def record(directory: str, zone: str, serial: int, salt: bytes, at: int, what: str,
           removed: int = 0, added: int = 0, *, dynamic: Mapping[Ident, tuple[str, RRsetRec | None]]
           | None = None, forget: tuple[Ident, ...] = ()) -> None:
    """A version served: the zone's serial and a journal row, with the RRsets an update
    changed (`dynamic`) and those the unsigned file took back (`forget`), in one transaction."""
    conn = _connect(directory)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for (key, rdtype), (base, value) in (dynamic or {}).items():
            conn.execute("INSERT OR REPLACE INTO dynamic VALUES (?, ?, ?, ?, ?)",
                         (zone, key_wire(key).hex(), rdtype, base, _encode(value)))
        _forget(conn, zone, forget)
        conn.execute("INSERT INTO zone (zone, serial, salt) VALUES (?, ?, ?) ON CONFLICT(zone) "
                     "DO UPDATE SET serial = excluded.serial, salt = excluded.salt",
                     (zone, serial, salt.hex()))
        conn.execute("INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?)",
                     (zone, serial, at, what, removed, added))
        conn.execute("DELETE FROM journal WHERE zone = ? AND rowid NOT IN (SELECT rowid FROM "
                     "journal WHERE zone = ? ORDER BY rowid DESC LIMIT ?)",
                     (zone, zone, JOURNAL_KEPT))
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise OperationalError(f"cannot write the inline state: {exc}",
                               file=os.path.join(directory, DB_NAME)) from None
    finally:
        conn.close()
