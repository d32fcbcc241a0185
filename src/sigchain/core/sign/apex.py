"""The apex records a signer sets: DNSKEY (with foreign keys kept), CDS/CDNSKEY, NSEC3PARAM
and the SOA serial."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdtypes.ANY.SOA
from dns.rdatatype import RdataType

from sigchain.core.dnssec import ds
from sigchain.core.sign.keyset import KeyPlan
from sigchain.core.zone import nsec3hash
from sigchain.errors import InputError
from sigchain.findings import Finding
from sigchain.model.keys import KeyPair


class ApexOptions(Protocol):
    """What `set_apex` reads of the signing options."""

    @property
    def cds(self) -> bool: ...
    @property
    def nsec3(self) -> nsec3hash.Nsec3Params | None: ...
    @property
    def serial(self) -> str: ...
    @property
    def cds_delete(self) -> bool: ...
    @property
    def cds_digests(self) -> tuple[int, ...]: ...
    @property
    def cdnskey(self) -> bool: ...


CDS_DELETE = dns.rdata.from_text(dns.rdataclass.IN, RdataType.CDS, "0 0 0 00")
CDNSKEY_DELETE = dns.rdata.from_text(dns.rdataclass.IN, RdataType.CDNSKEY, "0 3 0 AA==")


def _syncs(k: KeyPair, now: int, cds: bool) -> bool:
    """Whether a KSK's CDS/CDNSKEY are published at `now`: inside its SyncPublish..SyncDelete
    window when it has one (what `keys run` writes) — whether or not its DNSKEY is (RFC 7583
    §3.3.2, double-DS: the successor's DS is asked for before its DNSKEY is out, and the
    predecessor's kept until IretC after its DNSKEY left: BIND's dnssec-signzone -S asks for
    the DNSKEY too, which would let a CDS-following parent drop the old DS while caches still
    hold the old key set); else with --cds while it is active and published (not for an
    algorithm roll's new key signing ahead of its DNSKEY). Never for a revoked key (it
    leaves the chain)."""
    if k.timing.is_revoked(now):
        return False
    if k.timing.sync_delete is not None and k.timing.sync_delete <= now:
        return False
    if k.timing.sync_publish is not None:
        return k.timing.sync_publish <= now
    return cds and k.timing.is_active(now) and k.timing.is_published(now)


def next_serial(current: int, policy: str, now: int) -> int:
    """RFC 1982 serial update; `unixtime` never goes backwards (falls back to increment)."""
    inc = (current + 1) % (1 << 32) or 1
    if policy == "keep":
        return current
    if policy == "increment":
        return inc
    if policy == "unixtime":
        return now if (now - current) % (1 << 32) < (1 << 31) and now != current else inc
    raise InputError(f"unknown serial policy {policy!r} (keep, increment or unixtime)")


def rdataset(rdtype: int, ttl: int, rdatas: Sequence[dns.rdata.Rdata]) -> dns.rdataset.Rdataset:
    rds = dns.rdataset.Rdataset(dns.rdataclass.IN, rdtype)
    rds.update_ttl(ttl)
    for rd in rdatas:
        rds.add(rd)
    return rds


def set_apex(
    apex: dict[int, dns.rdataset.Rdataset],
    origin: dns.name.Name,
    keys: Sequence[KeyPair],
    plan: KeyPlan,
    opts: ApexOptions,
    now: int,
    warnings: list[Finding],
) -> None:
    """Set the apex DNSSEC records in place: DNSKEY from the key directory (plus foreign
    keys already in the zone), CDS/CDNSKEY with --cds (or their delete form when the key
    policy goes insecure and no key is in its CDS window), NSEC3PARAM, and the SOA serial."""
    soa_rds = apex.get(RdataType.SOA)
    if soa_rds is None:
        raise InputError(f"no SOA record at the zone apex {origin}")
    soa: dns.rdtypes.ANY.SOA.SOA = soa_rds[0]  # type: ignore[assignment]
    ours = {(k.algorithm, k.dnskey.key) for k in keys}  # whatever its flags (REVOKE)
    old_dnskey = apex.pop(RdataType.DNSKEY, None)
    foreign = [
        rd for rd in (old_dnskey or ())
        if (rd.algorithm, rd.key) not in ours  # type: ignore[attr-defined]
    ]
    for rd in foreign:
        if rd.algorithm not in plan.zsk_signers:  # type: ignore[attr-defined]
            raise InputError(
                f"the zone's DNSKEY RRset has a key (tag {dns.dnssec.key_id(rd)}, algorithm "  # type: ignore[arg-type]
                f"{rd.algorithm}) with no signing key of its algorithm in the key directory"  # type: ignore[attr-defined]
            )
    key_ttls = [k.ttl for k in plan.published if k.ttl is not None]
    dnskey_ttl = min(key_ttls) if key_ttls else (old_dnskey.ttl if old_dnskey else soa_rds.ttl)
    apex[RdataType.DNSKEY] = rdataset(
        RdataType.DNSKEY, dnskey_ttl, [k.dnskey for k in plan.published] + foreign
    )
    sync = [k for k in plan.seps if _syncs(k, now, opts.cds)]
    if sync:
        apex[RdataType.CDS] = rdataset(RdataType.CDS, dnskey_ttl, [
            ds.make_cds(origin, k.dnskey, digest) for k in sync for digest in opts.cds_digests])
        if opts.cdnskey:
            apex[RdataType.CDNSKEY] = rdataset(
                RdataType.CDNSKEY, dnskey_ttl, [ds.make_cdnskey(k.dnskey) for k in sync]
            )
        else:
            apex.pop(RdataType.CDNSKEY, None)
    elif opts.cds_delete:  # RFC 8078 §4: ask the parent to remove the DS (signed by the KSK)
        apex[RdataType.CDS] = rdataset(RdataType.CDS, dnskey_ttl, [CDS_DELETE])
        apex[RdataType.CDNSKEY] = rdataset(RdataType.CDNSKEY, dnskey_ttl, [CDNSKEY_DELETE])
    elif opts.cds:
        warnings.append(Finding("CDS_NO_ACTIVE_KSK", {}))
    if opts.nsec3 is not None:
        apex[RdataType.NSEC3PARAM] = rdataset(
            RdataType.NSEC3PARAM, 0, [nsec3hash.nsec3param_rdata(opts.nsec3)]
        )
    new_serial = next_serial(soa.serial, opts.serial, now)
    if new_serial != soa.serial:
        apex[RdataType.SOA] = rdataset(RdataType.SOA, soa_rds.ttl, [soa.replace(serial=new_serial)])
