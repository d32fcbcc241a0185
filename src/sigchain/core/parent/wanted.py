"""The DS RRset a zone's parent should hold now (pure): a DS per digest type of the policy for
every KSK/CSK inside its CDS window (SyncPublish ≤ now < SyncDelete), the same keys `sign`
publishes CDS/CDNSKEY for; and its text forms for an UPDATE or a hook."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS

from sigchain.core.dnssec import ds as ds_mod
from sigchain.core.rollover.states import Key


@dataclass(frozen=True)
class Wanted:
    key_id: str
    tag: int
    ds: tuple[dns.rdtypes.ANY.DS.DS, ...]


def in_cds_window(k: Key, now: int) -> bool:
    return (k.signs_dnskey and k.purged is None and k.cds_published is not None
            and k.cds_published <= now and (k.cds_withdrawn is None or now < k.cds_withdrawn))


def wanted_ds(zone: dns.name.Name,
              keys: Iterable[tuple[Key, int, dns.rdtypes.ANY.DNSKEY.DNSKEY]],
              digest_types: Sequence[int], now: int) -> tuple[Wanted, ...]:
    """One entry per key whose DS the parent should have at `now`, with its DS records."""
    return tuple(Wanted(k.id, tag, tuple(ds_mod.make_ds(zone, dnskey, t) for t in digest_types))
                 for k, tag, dnskey in keys if in_cds_window(k, now))


def ds_lines(zone: dns.name.Name, wanted: Iterable[Wanted]) -> list[str]:
    """`dnssec-dsfromkey` lines, one per DS."""
    return [ds_mod.ds_text(zone, d) for w in wanted for d in w.ds]
