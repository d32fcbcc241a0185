"""Key-state metrics for zones whose keys sigchain manages (`sigchain keys`): read from the
key directory's SQLite state at scrape time (a local read, never DNS), as the record states
`keys status` shows and the time of each key's next change."""

from __future__ import annotations

import logging

import dns.name

from sigchain.core.probe.metrics import Family
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
            status = keymanager.status(self.zone, self.directory, now)
        except SigchainError as exc:
            if str(exc) != self._failing:  # once per distinct problem, not every scrape
                log.warning("key state of %s in %s: %s", zone, self.directory, exc)
                self._failing = str(exc)
            return [state, nxt]
        self._failing = None
        for row in status.keys:
            tag, role = str(row.stored.tag), row.stored.key.role
            for record in RECORDS:
                value = STATE_VALUES[row.states[record]]
                state.samples.append(((zone, tag, role, record.upper()), float(value)))
            if row.next_at is not None:
                nxt.samples.append(((zone, tag), float(row.next_at)))
        return [state, nxt]
