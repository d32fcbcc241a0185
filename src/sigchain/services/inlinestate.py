"""The inline signer's state beside the keys (SQLite, `sigchain-inline.sqlite3`): per zone the
last serial served, the NSEC3 salt, and a journal of the versions served, one transaction per
change, so a restart never serves a serial below one served before."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass

from sigchain.errors import InputError, OperationalError

DB_NAME = "sigchain-inline.sqlite3"
SCHEMA_VERSION = 1
JOURNAL_KEPT = 100  # journal rows kept per zone
_SCHEMA = """
CREATE TABLE IF NOT EXISTS zone (zone TEXT PRIMARY KEY, serial INTEGER NOT NULL, salt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (zone TEXT NOT NULL, serial INTEGER NOT NULL, at INTEGER NOT NULL,
    what TEXT NOT NULL, removed INTEGER NOT NULL, added INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class InlineState:
    serial: int | None  # the last serial served (None: never served from this directory)
    salt: bytes | None


def _connect(directory: str) -> sqlite3.Connection:
    path = os.path.join(directory, DB_NAME)
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:  # a new database: made in one transaction
            conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} "
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


def record(directory: str, zone: str, serial: int, salt: bytes, at: int, what: str,
           removed: int = 0, added: int = 0) -> None:
    """A version served: the zone's serial and a journal row, in one transaction."""
    conn = _connect(directory)
    try:
        conn.execute("BEGIN IMMEDIATE")
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
