"""The chain of trust: which zone holds an RRset and how its keys are authenticated, from a
trust anchor or the parent's DS RRset (RFC 4035 §5.1, §5.2; RFC 4509; RFC 6840 §4.2, §4.10)."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import dns.dnssec
import dns.name
import dns.rdatatype
from dns.rdatatype import RdataType

from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.ds import ds_matches, key_tag
from sigchain.core.dnssec.policy import DnssecPolicy
from sigchain.core.validate.proofs import Proof
from sigchain.core.validate.signatures import (
    DNSKEY,
    DS,
    RRSIG,
    Key,
    KeyMap,
    SignatureChecks,
    Signed,
    ZoneKeys,
    find,
    finding,
    pair,
)
from sigchain.core.validate.verdict import Link, Status
from sigchain.errors import InputError
from sigchain.memo import Kept
from sigchain.model.keys import FLAG_REVOKE, FLAG_ZONE


def unusable(rd: DNSKEY, policy: DnssecPolicy) -> str:
    """Why a DNSKEY cannot authenticate anything (RFC 4034 §2.1.1-2.1.2, RFC 5011 §2.1)."""
    if rd.protocol != 3:
        return f"protocol {rd.protocol}, not 3"
    if not rd.flags & FLAG_ZONE:
        return "the zone-key flag is clear"
    if rd.flags & FLAG_REVOKE:
        return "it is revoked"
    if not policy.may_validate(rd.algorithm):
        return f"algorithm {rd.algorithm} is not supported"
    return ""


MAX_KEYSETS = 256  # zones' key sets kept by `TrustChain._keyset` (all dropped when full)
_KEYSETS: Kept[tuple[Any, ...], tuple[Any, ...]] = Kept(MAX_KEYSETS)


def _same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _frozen(keys: dict[tuple[int, int], list[Key]]) -> KeyMap:
    """A key map that no validation can change: it is shared by the ones that follow."""
    return MappingProxyType({k: tuple(v) for k, v in keys.items()})


class TrustChain(SignatureChecks):
    """Zones and their keys, established once per zone and cached."""

    def _zone_above(self, name: dns.name.Name) -> dns.name.Name | None:
        above = [z for z in self.known if name.is_subdomain(z) and z != name]
        return max(above, key=len, default=None)

    def _zone_of(self, owner: dns.name.Name, rdtype: int, sigs: Sequence[RRSIG]) -> dns.name.Name | None:
        """The zone that holds (owner, rdtype): the deepest zone of the evidence or the anchors
        that encloses the owner (strictly, for DS: RFC 4035 §2.4) — or, when no RRSIG names
        that zone, the deepest signer below it, a zone the evidence may have missed."""
        strict = rdtype == RdataType.DS and owner != dns.name.root  # the root's own: no parent

        def encloses(zone: dns.name.Name) -> bool:
            return owner.is_subdomain(zone) and not (strict and zone == owner)

        known = max((z for z in self.known if encloses(z)), key=len, default=None)
        signers = {s.signer for s in sigs if encloses(s.signer)}
        if known in signers:
            return known
        deeper = [s for s in signers if known is None or s.is_subdomain(known)]
        return max(deeper, key=len, default=known)

    def _zone(self, name: dns.name.Name) -> ZoneKeys:
        if name not in self.zone_keys:
            self.zone_keys[name] = self._establish(name)
        return self.zone_keys[name]

    def _establish(self, name: dns.name.Name) -> ZoneKeys:
        """The closest trust anchor wins (RFC 6840 §4.10); otherwise the parent's DS link."""
        if name in self.anchors:
            return self._from_anchor(name)
        parent = self._zone_above(name)
        if parent is None:
            return ZoneKeys(Status.INDETERMINATE)
        above = self._zone(parent)
        if above.status is not Status.SECURE:
            return ZoneKeys(above.status)
        return self._from_parent(name, parent, above)

    def _from_parent(self, name: dns.name.Name, parent: dns.name.Name, above: ZoneKeys) -> ZoneKeys:
        cut = self.cuts.get(name)
        ds = find(pair(cut.ds), name, RdataType.DS) if cut else None
        if ds is not None:
            checked = self._check(ds, parent, above.keys)
            if not checked.ok:
                self.findings.extend(checked.problems)
                return ZoneKeys(Status.BOGUS)
            self._link(checked)
            return self._from_ds(name, list(ds.rrset), anchor=False)
        if cut is not None and cut.ds_denial:
            proof = self._denial(parent, above, pair(cut.ds_denial), "no-ds", name, RdataType.DS)
            if proof.holds:
                self.links.append(Link(parent, "no-ds", name, RdataType.DS, detail=proof.detail))
                return ZoneKeys(Status.INSECURE)
            return ZoneKeys(Status.BOGUS)
        self.findings.append(finding("DS_ABSENCE_UNPROVEN", {"claim": "no-ds", "detail": (
            f"{parent} is secure but the evidence has neither a DS RRset for {name} nor a proof "
            "that it has none")}, name, RdataType.DS))
        return ZoneKeys(Status.BOGUS)

    def _from_anchor(self, name: dns.name.Name) -> ZoneKeys:
        anchors = self.anchors[name]
        ds = [rd for rd in anchors if rd.rdtype == RdataType.DS]
        keys = [rd for rd in anchors if rd.rdtype == RdataType.DNSKEY]
        return self._from_ds(name, ds, anchor=True, anchor_keys=keys)  # type: ignore[arg-type]

    def _from_ds(self, zone: dns.name.Name, ds_set: Sequence[DS], anchor: bool,
                 anchor_keys: Sequence[DNSKEY] = ()) -> ZoneKeys:
        """RFC 4035 §5.2: a DS (or trust anchor) names a key that signs the DNSKEY RRset."""
        source = "trust anchor" if anchor else "DS"
        may = self.policy
        usable = [d for d in ds_set if may.may_validate(d.algorithm) and may.may_validate_digest(d.digest_type)]
        # RFC 4509 §3: SHA-1 DS records are ignored when the DS RRset holds a SHA-256 one —
        # for any key, as Unbound uses only the set's strongest digest: a SHA-1 DS beside a
        # SHA-256 one must not be the weaker way in
        sha256 = any(d.digest_type == 2 for d in usable)
        for d in usable:
            if d.digest_type == 1 and sha256:
                self.findings.append(finding("DS_SHA1_IGNORED", {
                    "source": source, "tag": d.key_tag, "algorithm": d.algorithm}, zone, RdataType.DS))
        usable = [d for d in usable if not (d.digest_type == 1 and sha256)]
        usable_keys = [k for k in anchor_keys if may.may_validate(k.algorithm)]
        if not usable and not usable_keys:
            return self._unsupported(zone, ds_set, anchor_keys, source)

        dnskey = find(pair(self.cuts[zone].dnskey), zone, RdataType.DNSKEY) if zone in self.cuts else None
        if dnskey is None:
            self.findings.append(finding("DNSKEY_MISSING", {"source": source, "zone": zone.to_text()},
                                          zone, RdataType.DNSKEY))
            return ZoneKeys(Status.BOGUS)
        entry, keys, new = self._keyset(zone, dnskey, usable, usable_keys, source)
        if not entry:
            return ZoneKeys(Status.BOGUS)
        checked = self._check(dnskey, zone, entry)  # every time: the RRSIGs' validity times
        if not checked.ok:
            self.findings.extend(checked.problems)
            return ZoneKeys(Status.BOGUS)
        if new is not None:  # remembered only once the key RRset's signature verified
            _KEYSETS.keep(*new)
        self._link(checked)
        return ZoneKeys(Status.SECURE, keys)

    def _keyset(self, zone: dns.name.Name, dnskey: Signed, ds_set: Sequence[DS],
                anchor_keys: Sequence[DNSKEY], source: str) -> tuple[KeyMap, KeyMap, Any]:
        """The keys a DS or trust anchor authenticates (`_entry_keys`, its links and findings
        added) and every usable key of the DNSKEY RRset, by algorithm and key tag. Both are a
        function of the zone's name, the DS/anchor and DNSKEY rdata and the policy alone, so
        they are remembered by those objects' identity (held by the entry: no id is reused
        while it is kept; rdata and policies are immutable) and the links and findings are
        replayed: a resolver meets the same key RRset for every name under a zone. Nothing
        about the RRset's signatures is remembered here; the caller checks them every time,
        and keeps a new entry (the third item; None for one remembered already) only for an
        RRset whose signature verified, so that forged key sets are not held."""
        rdatas = tuple(dnskey.rrset)
        ds_set, anchor_keys = tuple(ds_set), tuple(anchor_keys)
        key = (zone.labels, source, id(self.policy), tuple(map(id, rdatas)), tuple(map(id, ds_set)),
               tuple(map(id, anchor_keys)))
        kept = _KEYSETS.get(key)
        if kept is not None and kept[0] is self.policy and all(
                _same(a, b) for a, b in zip(kept[1], (rdatas, ds_set, anchor_keys), strict=True)):
            entry, keys, links, findings = kept[2]
            self.links.extend(links)
            self.findings.extend(findings)
            return entry, keys, None
        links_before, findings_before = len(self.links), len(self.findings)
        entry = self._entry_keys(zone, dnskey, ds_set, anchor_keys, source)
        usable: dict[tuple[int, int], list[Key]] = {}
        for rd in rdatas:
            k = self._key(rd)  # type: ignore[arg-type]
            if k is not None:
                usable.setdefault((rd.algorithm, k.tag), []).append(k)  # type: ignore[attr-defined]
        made = (_frozen(entry), _frozen(usable), tuple(self.links[links_before:]),
                tuple(self.findings[findings_before:]))
        return made[0], made[1], (key, (self.policy, (rdatas, ds_set, anchor_keys), made))

    def _unsupported(self, zone: dns.name.Name, ds_set: Sequence[DS], anchor_keys: Sequence[DNSKEY],
                     source: str) -> ZoneKeys:
        """RFC 4035 §5.2, RFC 6840 §4.2: no supported algorithm/digest → insecure, not bogus."""
        may = self.policy
        algs = sorted({d.algorithm for d in ds_set if not may.may_validate(d.algorithm)}
                      | {k.algorithm for k in anchor_keys if not may.may_validate(k.algorithm)})
        digests = sorted({d.digest_type for d in ds_set if may.may_validate(d.algorithm)
                          and not may.may_validate_digest(d.digest_type)})
        if algs:
            self.findings.append(finding("ALGORITHM_UNSUPPORTED", {
                "source": source, "algorithms": algs, "zone": zone.to_text()}, zone, RdataType.DS))
        if digests:
            self.findings.append(finding("DS_DIGEST_UNSUPPORTED", {
                "digests": digests, "zone": zone.to_text()}, zone, RdataType.DS))
        if not algs and not digests:
            self.findings.append(finding("DS_ABSENCE_UNPROVEN", {
                "claim": "no-ds", "detail": f"the {source} RRset for {zone} is empty"}, zone, RdataType.DS))
            return ZoneKeys(Status.BOGUS)
        return ZoneKeys(Status.INSECURE)

    def _key(self, rd: DNSKEY) -> Key | None:
        if unusable(rd, self.policy):
            return None
        try:
            public = algorithms.public_key_from_dnskey(algorithms.get(rd.algorithm), rd.key)
        except InputError:
            return None
        return Key(rd, key_tag(rd), public)

    def _entry_keys(self, zone: dns.name.Name, dnskey: Signed, ds_set: Sequence[DS],
                    anchor_keys: Sequence[DNSKEY], source: str) -> dict[tuple[int, int], list[Key]]:
        """The keys of the DNSKEY RRset that a DS or DNSKEY trust anchor authenticates, by
        algorithm, key tag and digest (RFC 4035 §5.2), at most `max_keys_per_tag` per DS."""
        entry: dict[tuple[int, int], list[Key]] = {}
        cap = self.limits.max_keys_per_tag

        def accept(rd: DNSKEY, why: str) -> None:
            key = self._key(rd)
            if key is None:
                self.findings.append(finding("DNSKEY_UNUSABLE", {
                    "tag": key_tag(rd), "algorithm": rd.algorithm, "source": source,
                    "reason": unusable(rd, self.policy) or "malformed public key"},
                    zone, RdataType.DNSKEY))
                return
            entry.setdefault((rd.algorithm, key.tag), []).append(key)
            self.links.append(Link(zone, "anchor" if source == "trust anchor" else "ds", zone,
                                   RdataType.DNSKEY, key.tag, rd.algorithm, why))

        for d in ds_set:
            same_tag = [rd for rd in dnskey.rrset
                        if rd.algorithm == d.algorithm and key_tag(rd) == d.key_tag]  # type: ignore[attr-defined, arg-type]
            matched = [rd for rd in same_tag[:cap] if ds_matches(zone, d, rd, self.policy)]  # type: ignore[arg-type]
            for rd in matched:
                accept(rd, f"{source} {d.key_tag}/{d.algorithm}/digest {d.digest_type} matches")  # type: ignore[arg-type]
            if not matched and len(same_tag) > cap:
                self.findings.append(finding("WORK_LIMIT_EXCEEDED", {
                    "limit": "max_keys_per_tag", "value": cap,
                    "what": f"keys with tag {d.key_tag} (of {len(same_tag)})"}, zone, RdataType.DNSKEY))
        for anchor in anchor_keys:
            why = unusable(anchor, self.policy)
            if why:  # a revoked anchor (RFC 5011 §2.1) anchors nothing, whatever the zone shows
                self.findings.append(finding("DNSKEY_UNUSABLE", {
                    "tag": key_tag(anchor), "algorithm": anchor.algorithm, "source": source,
                    "reason": why}, zone, RdataType.DNSKEY))
                continue
            for rd in dnskey.rrset:
                if (rd.algorithm, rd.protocol, rd.key) == (anchor.algorithm, anchor.protocol, anchor.key):  # type: ignore[attr-defined]
                    accept(rd, f"{source} DNSKEY {key_tag(anchor)} is in the RRset")  # type: ignore[arg-type]
        if not entry:
            described = ([f"DS {d.key_tag}/{d.algorithm}/{d.digest_type}" for d in ds_set]
                         + [f"DNSKEY {key_tag(k)}" for k in anchor_keys])
            self.findings.append(finding("DS_NO_MATCHING_DNSKEY", {
                "zone": zone.to_text(), "source": source, "records": described}, zone, RdataType.DNSKEY))
        return entry


    def _denial(self, zone: dns.name.Name, keys: ZoneKeys, rrsets: Sequence[Signed], claim: str,
                name: dns.name.Name, qtype: int, closest_encloser: dns.name.Name | None = None,
                report: bool = True) -> Proof:
        """Provided by Denials (core/validate/denial.py): a parent's proof that a DS is absent."""
        raise NotImplementedError
