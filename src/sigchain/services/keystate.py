"""The key manager's state in its key directory: a versioned SQLite database of each zone's
keys (their timestamps), the operator's parent observations, the policy last run and a log of
what was done; and the lock file that keeps two runs on one directory from interleaving."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from sigchain.clock import SYSTEM, Clock
from sigchain.core.rollover.planner import Action, Observation
from sigchain.core.rollover.policy import Carried, KeyPolicy, KeySpec, Nsec3Param
from sigchain.core.rollover.states import Key
from sigchain.errors import InputError, OperationalError

DB_NAME = "sigchain-keys.sqlite3"
LOCK_NAME = "sigchain-keys.lock"
SCHEMA_VERSION = 2  # 2: keys.revoked (RFC 5011 revocation)
LOCK_WAIT = 5.0  # seconds a run waits for another to finish before it refuses

_KEY_COLUMNS = tuple(f.name for f in dataclasses.fields(Key))
_SCHEMA = f"""
CREATE TABLE policy (zone TEXT PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE keys (zone TEXT NOT NULL, {', '.join(f'{c} {_t}' for c, _t in (
    (c, 'TEXT' if c in ('id', 'role', 'predecessor') else 'INTEGER') for c in _KEY_COLUMNS))},
    tag INTEGER NOT NULL, base TEXT NOT NULL, PRIMARY KEY (zone, id));
CREATE TABLE observations (zone TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL,
    since INTEGER NOT NULL, PRIMARY KEY (zone, key, kind));
CREATE TABLE log (zone TEXT NOT NULL, at INTEGER NOT NULL, kind TEXT NOT NULL,
    key TEXT NOT NULL, reason TEXT NOT NULL);
"""


@dataclass(frozen=True)
class StoredKey:
    """A key as the state holds it: the planner's facts plus its tag and file base name."""

    key: Key
    tag: int
    base: str  # Kzone+AAA+TTTTT, in the key directory


@dataclass(frozen=True)
class ZoneState:
    keys: tuple[StoredKey, ...]
    observations: tuple[Observation, ...]
    policy: KeyPolicy | None
    carried: Carried = dataclasses.field(default_factory=dict)  # lowered cache values still assumed


def policy_to_json(p: KeyPolicy, carried: Carried | None = None) -> str:
    data = dataclasses.asdict(p)
    if carried:  # kept beside the policy (not a policy setting): see rollover.policy.carried
        data["_carried"] = {f: list(v) for f, v in carried.items()}
    return json.dumps(data, sort_keys=True)


def carried_from_json(text: str) -> Carried:
    return {f: (int(v[0]), int(v[1])) for f, v in json.loads(text).get("_carried", {}).items()}


def policy_from_json(text: str) -> KeyPolicy:
    data = json.loads(text)
    data.pop("_carried", None)
    data["keys"] = tuple(KeySpec(**k) for k in data["keys"])
    data["cds_digest_types"] = tuple(data["cds_digest_types"])
    data["nsec3"] = None if data["nsec3"] is None else Nsec3Param(**data["nsec3"])
    return KeyPolicy(**data)


def db_path(directory: str) -> str:
    return os.path.join(directory, DB_NAME)


def _connect(path: str, readonly: bool) -> sqlite3.Connection:
    try:
        if readonly:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        else:
            conn = sqlite3.connect(path, isolation_level=None)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise InputError(f"not a sigchain key state database: {exc}", file=path) from None
    if version == 0 and not readonly:
        conn.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    elif version == 1 and not readonly:  # version 1 had no revoked column: add it
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ALTER TABLE keys ADD COLUMN revoked INTEGER")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    elif version == 1:
        pass  # read as is: load() reads the columns version 1 has
    elif version != SCHEMA_VERSION:
        raise InputError(f"key state schema version {version}; this sigchain reads version "
                         f"{SCHEMA_VERSION}", file=path)
    return conn


def load(directory: str, zone: str) -> ZoneState:
    """The zone's state (empty when the directory has no database yet); reads only."""
    path = db_path(directory)
    if not os.path.exists(path):
        return ZoneState((), (), None)
    conn = _connect(path, readonly=True)
    try:
        have = {row[1] for row in conn.execute("PRAGMA table_info(keys)")}
        columns = [c if c in have else f"NULL AS {c}" for c in _KEY_COLUMNS]
        rows = conn.execute(f"SELECT {', '.join(columns)}, tag, base FROM keys "
                            "WHERE zone = ? ORDER BY created, id", (zone,)).fetchall()
        keys = tuple(StoredKey(Key(*row[:-2]), row[-2], row[-1]) for row in rows)
        obs = tuple(Observation(*row) for row in conn.execute(
            "SELECT key, kind, since FROM observations WHERE zone = ? ORDER BY since", (zone,)))
        row = conn.execute("SELECT body FROM policy WHERE zone = ?", (zone,)).fetchone()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"unreadable key state: {exc}", file=path) from None
    finally:
        conn.close()
    if row is None:
        return ZoneState(keys, obs, None)
    return ZoneState(keys, obs, policy_from_json(row[0]), carried_from_json(row[0]))


@contextlib.contextmanager
def _transaction(directory: str) -> Iterator[sqlite3.Connection]:
    """One write transaction, rolled back on any error; an SQLite error in it is an
    OperationalError naming the database."""
    path = db_path(directory)
    new = not os.path.exists(path)
    try:
        conn = _connect(path, readonly=False)
        if new:
            os.chmod(path, 0o600)
    except sqlite3.Error as exc:
        raise OperationalError(f"cannot open the key state: {exc}", file=path) from None
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise OperationalError(f"cannot write the key state: {exc}", file=path) from None


def save(directory: str, zone: str, keys: tuple[StoredKey, ...], actions: tuple[Action, ...],
         policy: KeyPolicy | None, carried: Carried | None = None) -> None:
    """Store a run in one transaction: every key's timestamps, the policy (and the lowered
    cache values still assumed), the actions."""
    with _transaction(directory) as conn:
        marks = ", ".join("?" * (len(_KEY_COLUMNS) + 3))
        for sk in keys:
            values = [getattr(sk.key, c) for c in _KEY_COLUMNS]
            conn.execute(f"INSERT OR REPLACE INTO keys (zone, {', '.join(_KEY_COLUMNS)}, "
                         f"tag, base) VALUES ({marks})", [zone, *values, sk.tag, sk.base])
        if policy is not None:
            conn.execute("INSERT OR REPLACE INTO policy VALUES (?, ?, ?)",
                         (zone, policy.name, policy_to_json(policy, carried)))
        conn.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?)",
                         [(zone, a.at, a.kind, a.key, a.reason) for a in actions])


def observe(directory: str, zone: str, ob: Observation) -> None:
    """Store the operator's word about the parent (a later one replaces an earlier one)."""
    with _transaction(directory) as conn:
        conn.execute("INSERT OR REPLACE INTO observations VALUES (?, ?, ?, ?)",
                     (zone, ob.key, ob.kind, ob.since))


def forget(directory: str, zone: str, key: str, kind: str) -> None:
    """Drop an observation (a parent check that no longer sees it at every server)."""
    with _transaction(directory) as conn:
        conn.execute("DELETE FROM observations WHERE zone = ? AND key = ? AND kind = ?",
                     (zone, key, kind))


def set_roll(directory: str, zone: str, key_id: str, lifetime: int,
             deadline: int | None = None) -> None:
    """A roll started by hand: the key's new lifetime, and a forced deadline (emergency)."""
    with _transaction(directory) as conn:
        conn.execute("UPDATE keys SET lifetime = ?, deadline = ? WHERE zone = ? AND id = ?",
                     (lifetime, deadline, zone, key_id))


def set_revoked(directory: str, zone: str, key_id: str, revoked: int) -> None:
    """The operator revoked the key (RFC 5011) at `revoked`."""
    with _transaction(directory) as conn:
        conn.execute("UPDATE keys SET revoked = ? WHERE zone = ? AND id = ?",
                     (revoked, zone, key_id))


@contextlib.contextmanager
def locked(directory: str, clock: Clock = SYSTEM, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold the directory's lock (fcntl on LOCK_NAME): a second run waits up to `wait`
    seconds for the first, then refuses (exit 3) rather than interleave with it."""
    path = os.path.join(directory, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise OperationalError(f"cannot open the lock file: {exc.strerror}", file=path) from None
    try:
        deadline = clock.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise OperationalError(f"cannot lock: {exc.strerror}", file=path) from None
                if clock.monotonic() >= deadline:
                    raise OperationalError(
                        f"another `sigchain keys` run holds the lock on this key directory "
                        f"(waited {wait:g} s); try again when it has finished",
                        file=path) from None
                clock.sleep(0.1)
        yield
    finally:
        os.close(fd)
