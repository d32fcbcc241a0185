"""RFC 7583 rollover timings derived from a policy (each a sum of named terms, so an operator
can check the arithmetic) and `check`: every problem that makes a policy unsafe.

Terms as BIND's keymgr.c uses them: Dprp = zone-propagation-delay (child), DprpP =
parent-propagation-delay, TTLsig = max-zone-ttl, Dsgn = signatures-validity −
signatures-refresh (the time until every signature has been replaced by the new key's),
plus the policy's publish-safety and retire-safety margins.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigchain.core.dnssec.policy import DEFAULT_POLICY, DnssecPolicy
from sigchain.core.rollover.durations import render
from sigchain.core.rollover.policy import KeyPolicy


@dataclass(frozen=True)
class Interval:
    """A named interval and the terms that add up to it."""

    name: str
    terms: tuple[tuple[str, int], ...]

    @property
    def seconds(self) -> int:
        return sum(value for _, value in self.terms)

    def text(self) -> str:
        parts = " + ".join(f"{term} {render(value)}" for term, value in self.terms)
        return f"{self.name} = {parts} = {render(self.seconds)}"


@dataclass(frozen=True)
class Roll:
    """One roll method: phases run one after the other, each as long as its longest interval
    (intervals in one phase run at the same time); its RFC section and what gates it."""

    name: str
    rfc: str
    phases: tuple[tuple[Interval, ...], ...]
    gated_on: str = ""

    @property
    def total(self) -> int:
        return sum(max(i.seconds for i in phase) for phase in self.phases)

    def text(self) -> str:
        names = [p[0].name if len(p) == 1 else f"max({', '.join(i.name for i in p)})"
                 for p in self.phases]
        return f"roll = {' + '.join(names)} = {render(self.total)}"


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    unsafe: bool = True


def sign_delay(p: KeyPolicy) -> int:
    """Dsgn: signatures are refreshed `signatures-refresh` before expiry, so the zone is
    wholly re-signed with a new key `signatures-validity − signatures-refresh` after it starts."""
    return max(p.signatures_validity - p.signatures_refresh, 0)


def ipub(p: KeyPolicy) -> Interval:
    """RFC 7583 §3.2.1: Ipub = Dprp + TTLkey (+ publish-safety): a new DNSKEY in every cache."""
    return Interval("Ipub", (("zone-propagation-delay", p.zone_propagation_delay),
                             ("dnskey-ttl", p.dnskey_ttl), ("publish-safety", p.publish_safety)))


def iret_zsk(p: KeyPolicy) -> Interval:
    """RFC 7583 §3.2.1: Iret = Dsgn + Dprp + TTLsig (+ retire-safety): old signatures gone."""
    return Interval("Iret", (("Dsgn (signatures-validity - signatures-refresh)", sign_delay(p)),
                             ("zone-propagation-delay", p.zone_propagation_delay),
                             ("max-zone-ttl", p.max_zone_ttl), ("retire-safety", p.retire_safety)))


def ipub_parent(p: KeyPolicy) -> Interval:
    """RFC 7583 §3.3.2: IpubP = DprpP + TTLds (+ publish-safety), counted from when the new DS
    is seen at the parent (the registration delay Dreg is observed, not assumed)."""
    return Interval("IpubP", (("parent-propagation-delay", p.parent_propagation_delay),
                              ("parent-ds-ttl", p.parent_ds_ttl),
                              ("publish-safety", p.publish_safety)))


def iret_child(p: KeyPolicy) -> Interval:
    """RFC 7583 §3.3.2: IretC = DprpC + TTLkey (+ retire-safety): the old DNSKEY gone."""
    return Interval("IretC", (("zone-propagation-delay", p.zone_propagation_delay),
                              ("dnskey-ttl", p.dnskey_ttl), ("retire-safety", p.retire_safety)))


def iret_parent(p: KeyPolicy) -> Interval:
    """RFC 7583 §3.3.1: IretP = DprpP + TTLds (+ retire-safety): the old DS gone from caches,
    counted from when its withdrawal is seen at the parent."""
    return Interval("IretP", (("parent-propagation-delay", p.parent_propagation_delay),
                              ("parent-ds-ttl", p.parent_ds_ttl),
                              ("retire-safety", p.retire_safety)))


def zrrsig_in(p: KeyPolicy) -> Interval:
    """A new key's signatures on every RRset in every cache: Dsgn + Dprp + TTLsig (+ safety)."""
    return Interval("IsigIn", (("Dsgn (signatures-validity - signatures-refresh)", sign_delay(p)),
                               ("zone-propagation-delay", p.zone_propagation_delay),
                               ("max-zone-ttl", p.max_zone_ttl),
                               ("publish-safety", p.publish_safety)))


def rolls(p: KeyPolicy) -> dict[str, Roll]:
    """The roll each role needs, from publication of the successor to removal of the old key."""
    gate = "the new DS seen at every parent server (DS step gated on that observation)"
    return {
        "zsk": Roll("ZSK pre-publication", "RFC 7583 §3.2.1", ((ipub(p),), (iret_zsk(p),))),
        "ksk": Roll("KSK double-DS", "RFC 7583 §3.3.2", ((ipub_parent(p),), (iret_child(p),)),
                    gate),
        # A CSK signs the zone and the DS points at it: its DNSKEY is pre-published while its
        # DS goes in (double-DS), then it signs; the old one goes once its signatures and its
        # DNSKEY are out of every cache.
        "csk": Roll("CSK pre-publication + double-DS", "RFC 7583 §3.2.1 + §3.3.2",
                    ((ipub(p), ipub_parent(p)), (iret_zsk(p), iret_child(p))), gate),
    }


def _signature_problems(p: KeyPolicy) -> list[Problem]:
    out = []
    for what, validity, ttl, ttl_name in (
        ("signatures-validity", p.signatures_validity, p.max_zone_ttl, "max-zone-ttl"),
        ("signatures-validity-dnskey", p.signatures_validity_dnskey, p.dnskey_ttl, "dnskey-ttl"),
    ):
        if p.signatures_refresh >= validity:
            out.append(Problem("refresh-not-below-validity",
                               f"signatures-refresh {render(p.signatures_refresh)} is not below "
                               f"{what} {render(validity)}: signatures would be renewed forever"))
        elif validity - p.signatures_jitter <= p.signatures_refresh:
            out.append(Problem("jitter-eats-refresh",
                               f"{what} {render(validity)} − signatures-jitter "
                               f"{render(p.signatures_jitter)} leaves no time before "
                               f"signatures-refresh {render(p.signatures_refresh)}"))
        need = ttl + p.zone_propagation_delay
        if p.signatures_refresh < need:
            out.append(Problem("refresh-too-short",
                               f"signatures-refresh {render(p.signatures_refresh)} leaves less than "
                               f"{ttl_name} {render(ttl)} + zone-propagation-delay "
                               f"{render(p.zone_propagation_delay)} = {render(need)} before "
                               f"expiry: a cached RRset outlives its signature ({what})"))
    return out


def _key_problems(p: KeyPolicy, rules: DnssecPolicy) -> list[Problem]:
    out = []
    roll_of = rolls(p)
    for i, key in enumerate(p.keys):
        if key.algorithm not in rules.sign_algorithms:
            out.append(Problem("algorithm-forbidden",
                               f"keys[{i}]: algorithm {key.algorithm} MUST NOT be used for "
                               "signing (RFC 8624 §3.1, RFC 9904): use 13 (ECDSAP256SHA256)"))
        roll = roll_of[key.role]
        if key.lifetime is not None and key.lifetime < roll.total:
            out.append(Problem("lifetime-shorter-than-roll",
                               f"keys[{i}]: {key.role} lifetime {render(key.lifetime)} is shorter "
                               f"than its {roll.name} roll {render(roll.total)}"))
    pairs = [(k.role, k.algorithm) for k in p.keys]
    for role, alg in sorted({x for x in pairs if pairs.count(x) > 1}):
        out.append(Problem("duplicate-key", f"more than one {role} with algorithm {alg}: "
                           "sigchain keeps one line of succession per role and algorithm",
                           unsafe=False))
    if not any(k.signs_dnskey for k in p.keys):
        out.append(Problem("no-key-for-role", "no ksk or csk: nothing signs the DNSKEY RRset"))
    if not any(k.signs_zone for k in p.keys):
        out.append(Problem("no-key-for-role", "no zsk or csk: nothing signs the zone"))
    for alg in sorted({k.algorithm for k in p.keys}):
        roles = {k.role for k in p.keys if k.algorithm == alg}
        if roles == {"ksk"} or roles == {"zsk"}:
            out.append(Problem("algorithm-half-covered",
                               f"algorithm {alg} has only a {roles.pop()}: every algorithm in "
                               "the DNSKEY RRset must sign both it and the zone (RFC 4035 §2.2)"))
    return out


def check(p: KeyPolicy, rules: DnssecPolicy = DEFAULT_POLICY) -> list[Problem]:
    """Every problem with the policy (unsafe ones make `policy check` exit 1), none hidden."""
    out = _signature_problems(p) + _key_problems(p, rules)
    for digest in p.cds_digest_types:
        if digest not in rules.create_digests:
            out.append(Problem("digest-forbidden", f"cds-digest-types: digest type {digest} "
                               "MUST NOT be used for new DS records (RFC 8624 §3.3)"))
    if p.nsec3 is not None and p.nsec3.iterations > 0:
        out.append(Problem("nsec3-iterations",
                           f"nsec3param.iterations {p.nsec3.iterations}: use 0 (RFC 9276 §3.1); "
                           "validators may treat the zone as insecure or bogus above their cap"))
    if p.nsec3 is not None and p.nsec3.salt_length > 0:
        out.append(Problem("nsec3-salt", f"nsec3param.salt-length {p.nsec3.salt_length}: a salt "
                           "adds nothing (RFC 9276 §3.1 SHOULD NOT)", unsafe=False))
    return out
