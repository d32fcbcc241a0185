"""Key-state metrics for zones whose keys sigchain manages (`sigchain keys`): read from the
key directory's SQLite state at scrape time (a local read, never DNS), as the record states
`keys status` shows and the time of each key's next change. Only the key timings are read:
the rollover planner (what `keys status` also shows a run would do) is not run per scrape."""

from __future__ import annotations

import logging

import dns.name

from sigchain.core.probe.metrics import Family
from sigchain.core.rollover.states import next_change, states
from sigchain.errors import SigchainError
from sigchain.services import keymanager

log = logging.getLogger("sigchain.exporter")

# The value of dnssec_key_state (documented in alerts/dnssec.rules.yml).
STATE_VALUES = {"hidden": 0, "rumoured": 1, "omnipresent": 2, "unretentive": 3}
RECORDS = ("dnskey", "krrsig", "zrrsig", "ds")


class KeyStateSource:
    """`dnssec_key_state{zone,keytag,role,record}` and
    `dnssec_key_next_event_timestamp_seconds{zone,keytag}` for one zone's key directory."""

    def __init__(self, zone: dns.name.Name, directory: str):
        self.zone, self.directory = zone, directory
        self._failing: str | None = None

    def families(self, now: int) -> list[Family]:
        zone = self.zone.to_text()
        state = Family("dnssec_key_state",
                       "Record state of a managed key: 0 hidden, 1 rumoured, 2 omnipresent, "
                       "3 unretentive (RFC 7583 key-state model)",
                       ("zone", "keytag", "role", "record"))
        nxt = Family("dnssec_key_next_event_timestamp_seconds",
                     "When a managed key's record states change next (Unix time)",
                     ("zone", "keytag"))
        try:
            stored, policy = keymanager.stored_zone(self.zone, self.directory)
        except SigchainError as exc:
            if str(exc) != self._failing:  # once per distinct problem, not every scrape
                log.warning("key state of %s in %s: %s", zone, self.directory, exc)
                self._failing = str(exc)
            return [state, nxt]
        self._failing = None
        for sk in stored.keys:
            tag, role = str(sk.tag), sk.key.role
            now_states = states(sk.key, policy, now)
            for record in RECORDS:
                value = STATE_VALUES[getattr(now_states, record).value]
                state.samples.append(((zone, tag, role, record.upper()), float(value)))
            if (at := next_change(sk.key, policy, now)) is not None:
                nxt.samples.append(((zone, tag), float(at)))
        return [state, nxt]
