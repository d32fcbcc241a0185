"""`keys import-bind`: take over a key directory BIND 9.18's `dnssec-policy` manages. Each key's
`.state` file gives its record states and when each last changed (facts; its Retired/Removed
and CDS times may be BIND's predictions); they become sigchain timestamps that derive the same
states under the policy's TTLs, so the roll continues where BIND was."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

import dns.name

from sigchain.core.dnssec.timefmt import parse_timestamp14
from sigchain.core.rollover import timings
from sigchain.core.rollover.policy import KeyPolicy
from sigchain.core.rollover.states import Key, State
from sigchain.edge import keystore
from sigchain.edge.zonefile import read_text
from sigchain.errors import InputError
from sigchain.services import keystate
from sigchain.services.keystate import StoredKey

STATES = tuple(State)  # BIND's .state names are ours (Mekking's model)
# .state labels whose value is a time (the rest: numbers, yes/no, states).
_NUMBERS = ("Algorithm", "Length", "Lifetime", "Predecessor", "Successor")
_TIMES = ("Generated", "Published", "Active", "Retired", "Removed", "PublishCDS", "DeleteCDS",
          "DSPublish", "DSRemoved", "DNSKEYChange", "KRRSIGChange", "ZRRSIGChange", "DSChange")


@dataclass(frozen=True)
class StateFile:
    """A BIND `.state` file's fields: times as epoch seconds, the rest as text."""

    path: str
    times: dict[str, int]
    text: dict[str, str]
    lines: dict[str, int] = field(default_factory=dict)  # label → its line, for errors

    def state(self, record: str) -> str | None:
        return self.text.get(f"{record}State")


def parse_state(text: str, path: str) -> StateFile:
    times: dict[str, int] = {}
    fields: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if ":" not in line:
            raise InputError("expected 'Field: value'", file=path, line=lineno)
        label, value = (part.strip() for part in line.split(":", 1))
        if label in _TIMES:
            try:
                times[label] = parse_timestamp14(value.split()[0] if value else "")
            except InputError as exc:
                raise InputError(f"{label}: {exc.message}", file=path, line=lineno) from None
        elif label.endswith("State") and value not in STATES:
            raise InputError(f"{label}: unknown state {value!r} (expected one of "
                             f"{', '.join(STATES)})", file=path, line=lineno)
        elif label in _NUMBERS and not value.isdigit():
            raise InputError(f"{label}: expected a number, not {value!r}", file=path,
                             line=lineno)
        elif label in ("KSK", "ZSK") and value not in ("yes", "no"):
            raise InputError(f"{label}: expected yes or no, not {value!r}", file=path,
                             line=lineno)
        else:
            fields[label] = value
            lines[label] = lineno
    for need in ("KSK", "ZSK", "Lifetime"):
        if need not in fields:
            raise InputError(f"missing {need!r} field: not a BIND key state file", file=path)
    return StateFile(path, times, fields, lines)


def _span(st: StateFile, record: str, rise: int, fall: int, now: int
          ) -> tuple[int | None, int | None]:
    """When the record went in and out, so that our states at `now` are BIND's."""
    state = st.state(record)
    change = st.times.get(f"{record}Change", st.times.get("Generated", now))
    if state in (None, "hidden"):
        gone = st.text.get("GoalState") == "hidden" and st.times.get("Published", now + 1) <= now
        return (min(st.times["Published"], change - fall), change - fall) if gone else (None, None)
    if state == "rumoured":
        return change, None
    if state == "omnipresent":
        return change - rise, None
    return min(st.times.get("Published", change), change - rise), change  # unretentive


def _key(st: StateFile, kp_tag: int, policy: KeyPolicy, now: int) -> Key:
    ksk, zsk = st.text["KSK"] == "yes", st.text["ZSK"] == "yes"
    role = "csk" if ksk and zsk else "ksk" if ksk else "zsk"
    ipub, iret = timings.ipub(policy).seconds, timings.iret_child(policy).seconds
    published, removed = _span(st, "DNSKEY", ipub, iret, now)
    if zsk:
        active, retired = _span(st, "ZRRSIG", timings.zrrsig_in(policy).seconds,
                                timings.iret_zsk(policy).seconds, now)
    else:
        active, retired = _span(st, "KRRSIG", ipub, iret, now)
    past = {label: t for label, t in st.times.items() if t <= now}
    ds_in, ds_out = (_span(st, "DS", timings.ipub_parent(policy).seconds,
                           timings.iret_parent(policy).seconds, now) if ksk else (None, None))
    # A DS on its way in or out is seen at (or gone from) the parent only once BIND has
    # confirmed it: DSPublish / DSRemoved (its keymgr waits for them, RFC 7583 §3.3 counts
    # from there). Without them the DS step stays ours to watch, not taken as done.
    if st.state("DS") == "rumoured":
        ds_in = past.get("DSPublish")
    elif st.state("DS") == "unretentive":
        ds_out = past.get("DSRemoved")
    cds_in = past.get("PublishCDS", ds_in)
    lifetime = int(st.text["Lifetime"]) or None
    planned = st.times.get("Retired")
    if lifetime is not None and active is not None and planned is not None and retired is None:
        lifetime = max(planned - active, 1)  # BIND's plan for it (a rollover it already started)
    predecessor = st.text.get("Predecessor")
    return Key(str(kp_tag), role, int(st.text.get("Algorithm", "0")), lifetime,
               st.times.get("Generated", now), published=published, active=active,
               retired=retired, removed=removed, cds_published=cds_in,
               cds_withdrawn=past.get("DeleteCDS"), ds_published=ds_in, ds_withdrawn=ds_out,
               predecessor=predecessor)


def zones_in(directory: str) -> list[dns.name.Name]:
    names = {os.path.basename(p)[1:].rsplit("+", 2)[0]
             for p in glob.glob(os.path.join(glob.escape(directory), "K*.state"))}
    return sorted(dns.name.from_text(n) for n in names)


def read_zone(directory: str, zone: dns.name.Name, policy: KeyPolicy, now: int
              ) -> list[StoredKey]:
    """Every key of `zone` with a `.state` file, as sigchain state (nothing written)."""
    out = []
    for path in keystore.zone_key_paths(directory, zone):
        base = keystore.key_base(path)
        kp = keystore.load_pair(base)
        state_path = base + ".state"
        if not os.path.exists(state_path):
            raise InputError("key has no .state file: not managed by a dnssec-policy",
                             file=state_path)
        st = parse_state(read_text(state_path, encoding="ascii", what="key state file"),
                         state_path)
        key = _key(st, kp.key_tag, policy, now)
        if key.algorithm != kp.algorithm or (key.role != "zsk") != kp.is_sep:
            what = "Algorithm" if key.algorithm != kp.algorithm else "KSK"
            raise InputError(f"{what}: algorithm or role differs from the key file {base}.key",
                             file=state_path, line=st.lines.get(what))
        out.append(StoredKey(key, kp.key_tag, os.path.basename(base)))
    return out


def import_bind(directory: str, policy: KeyPolicy, now: int) -> dict[str, list[StoredKey]]:
    """Read every zone's BIND key states in `directory` and store them (refused for a zone
    that already has sigchain state); one transaction per zone, after all were read."""
    if not os.path.isdir(directory):
        raise InputError("key directory does not exist", file=directory)
    keystore.check_key_directory(directory)
    zones = zones_in(directory)
    if not zones:
        raise InputError("no BIND key state files (K*.state) here", file=directory)
    with keystate.locked(directory):
        found = {z.to_text(): read_zone(directory, z, policy, now) for z in zones}
        for name in found:
            if keystate.load(directory, name).keys:
                raise InputError(f"zone {name} already has sigchain key state here",
                                 file=keystate.db_path(directory))
        for name, keys in found.items():
            keystate.save(directory, name, tuple(keys), (), policy)
    return found
