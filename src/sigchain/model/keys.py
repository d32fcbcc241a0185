"""Keys and their BIND-compatible timing metadata."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import dns.dnssec
import dns.name
import dns.rdtypes.ANY.DNSKEY

FLAG_ZONE = 0x0100
FLAG_SEP = 0x0001
FLAG_REVOKE = 0x0080


class KeyRole(enum.Enum):
    KSK = "ksk"
    ZSK = "zsk"
    CSK = "csk"

    @property
    def flags(self) -> int:
        return FLAG_ZONE | (FLAG_SEP if self is not KeyRole.ZSK else 0)


# Field names exactly as BIND writes them in .private files, in BIND's order.
TIMING_FIELDS = (
    ("created", "Created"),
    ("publish", "Publish"),
    ("activate", "Activate"),
    ("revoke", "Revoke"),
    ("inactive", "Inactive"),
    ("delete", "Delete"),
    ("sync_publish", "SyncPublish"),
    ("sync_delete", "SyncDelete"),
)


@dataclass(frozen=True)
class KeyTiming:
    """BIND key timing metadata (seconds since the epoch); None = not set."""

    created: int | None = None
    publish: int | None = None
    activate: int | None = None
    revoke: int | None = None
    inactive: int | None = None
    delete: int | None = None
    sync_publish: int | None = None
    sync_delete: int | None = None

    def is_deleted(self, now: int) -> bool:
        return self.delete is not None and self.delete <= now

    def is_unscheduled(self) -> bool:
        """Timing metadata without a Publish or Activate time (e.g. Created only): a key made
        ahead of its roll, which `dnssec-signzone -S` leaves out until one is set."""
        return self.publish is None and self.activate is None and self != KeyTiming()

    def is_published(self, now: int) -> bool:
        """In the DNSKEY RRset at `now` (as `dnssec-signzone -S`: a key with no timing metadata
        at all is published; one with some but no Publish/Activate time is not yet)."""
        if self.is_deleted(now) or self.is_unscheduled():
            return False
        start = self.publish if self.publish is not None else self.activate
        return start is None or start <= now

    def is_revoked(self, now: int) -> bool:
        """Revoked at `now` (BIND's Revoke time passed, not yet deleted): published with the
        REVOKE bit and signing the DNSKEY RRset itself (RFC 5011 §2.1), as dnssec-signzone -S."""
        return self.revoke is not None and self.revoke <= now and not self.is_deleted(now)

    def is_active(self, now: int) -> bool:
        """Signing at `now`: activated, not yet inactive, not deleted (a key published with no
        Activate time is a stand-by key, as BIND treats it). A Publish time still to come
        does not stop it, as in BIND's dnssec-signzone -S: its signatures go out before its
        DNSKEY, as an algorithm roll's first step does (RFC 6781 §4.1.4)."""
        if self.is_deleted(now):
            return False
        if self.activate is None and self.publish is not None:
            return False
        if self.activate is not None and self.activate > now:
            return False
        if self.inactive is not None and self.inactive <= now:
            return False
        return self.activate is not None or self.is_published(now)


@dataclass(frozen=True, eq=False)
class KeyPair:
    """A DNSSEC key with its private half, as found in a BIND key directory."""

    zone: dns.name.Name
    algorithm: int
    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY
    private: Any = field(repr=False)  # a cryptography private key
    timing: KeyTiming
    ttl: int | None = None
    source: str = ""  # base path, for messages

    @property
    def flags(self) -> int:
        return self.dnskey.flags

    @property
    def is_sep(self) -> bool:
        return bool(self.dnskey.flags & FLAG_SEP)

    @cached_property
    def key_tag(self) -> int:
        return dns.dnssec.key_id(self.dnskey)
