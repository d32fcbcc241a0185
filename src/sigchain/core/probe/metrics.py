"""The exporter's metric families (names and labels are an interface: alert rules and
dashboards use them), built from the zones' last snapshots (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sigchain.core.probe.zone import ZoneSnapshot

Labels = tuple[str, ...]


@dataclass
class Family:
    """One gauge family: name, help, label names and its samples (label values → value)."""

    name: str
    help: str
    labels: Labels
    samples: list[tuple[Labels, float]] = field(default_factory=list)


def _families() -> dict[str, Family]:
    zs, zp, zr = ("zone", "server"), ("zone", "parent_server"), ("zone", "resolver")
    specs = [
        ("dnssec_zone_rrsig_expiry_timestamp_seconds",
         "Earliest RRSIG expiration over the RRset, as served by this server.",
         ("zone", "server", "name", "type")),
        ("dnssec_zone_rrsig_inception_timestamp_seconds",
         "Inception of that (earliest-expiring) RRSIG over the RRset.",
         ("zone", "server", "name", "type")),
        ("dnssec_zone_rrsig_earliest_expiry_timestamp_seconds",
         "Earliest RRSIG expiration over every RRset probed at this server.", zs),
        ("dnssec_zone_serial", "SOA serial served by this server.", zs),
        ("dnssec_zone_ds_matches_dnskey",
         "1 when a DS at this parent server matches a DNSKEY that signs the DNSKEY RRset "
         "(a correct signature, expired or not: expiry has its own metric), else 0.", zp),
        ("dnssec_zone_ds_count", "DS records for the zone at this parent server.", zp),
        ("dnssec_zone_validates", "1 when the resolver answered the zone's SOA with AD set.", zr),
        ("dnssec_zone_resolver_large_answer_ok",
         "1 when the resolver gave the zone's large answers (its DNSKEY RRset and the signed "
         "denial of a made-up name, asked with DO) whole and with AD, else 0: a path that cuts "
         "or drops big UDP answers fails them while the small SOA still validates.", zr),
        ("dnssec_zone_chain_validates",
         "1 when sigchain itself validates the zone's SOA from the configured anchor, asking "
         "this resolver with CD=1 (the data is there and the chain holds), else 0.", zr),
        ("dnssec_probe_success", "1 when the last probe of this server got a good answer.", zs),
        ("dnssec_probe_duration_seconds", "How long the last probe of this server took.", zs),
        ("dnssec_probe_timestamp_seconds", "When the zone's last probe round finished.",
         ("zone",)),
    ]
    return {name: Family(name, text, labels) for name, text, labels in specs}


def families(snapshots: Iterable[ZoneSnapshot]) -> list[Family]:
    """Every family, in a stable order. A failed probe reports success 0 and no data for that
    server (as blackbox_exporter: stale values would hide the failure)."""
    fam = _families()
    # (zone, server) → (success, duration): a server probed in two roles (authoritative for
    # the zone and for its parent, say) gets one series, failed if either probe failed.
    probes: dict[Labels, tuple[int, float]] = {}

    def put(name: str, labels: Labels, value: float) -> None:
        fam[name].samples.append((labels, float(value)))

    def probed(labels: Labels, ok: bool, duration: float) -> bool:
        was_ok, took = probes.get(labels, (1, 0.0))
        probes[labels] = (min(was_ok, int(ok)), took + duration)
        return ok

    for snap in sorted(snapshots, key=lambda s: s.zone):
        put("dnssec_probe_timestamp_seconds", (snap.zone,), snap.at)
        for p in snap.servers:
            zs = (snap.zone, p.server)
            if not probed(zs, p.ok, p.duration):
                continue
            for sig in p.sigs:
                key = (*zs, sig.name, sig.rdtype)
                put("dnssec_zone_rrsig_expiry_timestamp_seconds", key, sig.expiry)
                put("dnssec_zone_rrsig_inception_timestamp_seconds", key, sig.inception)
            if (first := p.earliest) is not None:
                put("dnssec_zone_rrsig_earliest_expiry_timestamp_seconds", zs, first.expiry)
            if p.serial is not None:
                put("dnssec_zone_serial", zs, p.serial)
        for d in snap.ds:
            if probed((snap.zone, d.parent_server), d.ok, d.duration):
                if d.matches is not None:
                    put("dnssec_zone_ds_matches_dnskey", (snap.zone, d.parent_server),
                        1 if d.matches else 0)
                put("dnssec_zone_ds_count", (snap.zone, d.parent_server), d.count)
        for r in snap.resolvers:
            if probed((snap.zone, r.resolver), r.ok, r.duration):
                put("dnssec_zone_validates", (snap.zone, r.resolver), 1 if r.validates else 0)
                if r.large_ok is not None:
                    put("dnssec_zone_resolver_large_answer_ok", (snap.zone, r.resolver),
                        1 if r.large_ok else 0)
            if r.chain_secure is not None:
                put("dnssec_zone_chain_validates", (snap.zone, r.resolver),
                    1 if r.chain_secure else 0)
    for labels, (ok, took) in probes.items():
        put("dnssec_probe_success", labels, ok)
        put("dnssec_probe_duration_seconds", labels, round(took, 6))
    return list(fam.values())
