"""What validation returns: the evidence it is given (question, response sections, the DS and
DNSKEY RRsets of each zone) and the Verdict (status, kind, links checked, findings)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from sigchain.findings import Finding


class Status(enum.Enum):
    """RFC 4033 §5 / RFC 4035 §4.3 security status; the order is "how bad" for combining."""

    SECURE = "secure"
    INSECURE = "insecure"
    INDETERMINATE = "indeterminate"
    BOGUS = "bogus"


_RANK = {Status.SECURE: 0, Status.INSECURE: 1, Status.INDETERMINATE: 2, Status.BOGUS: 3}


def worst(*statuses: Status) -> Status:
    return max(statuses, key=_RANK.__getitem__)


class Kind(enum.Enum):
    ANSWER = "answer"  # the question's RRset, possibly at the end of a CNAME/DNAME chain
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    REFERRAL = "referral"  # a delegation to a child zone: the verdict is the delegation's


@dataclass(frozen=True)
class Question:
    name: dns.name.Name
    rdtype: int
    rdclass: int = dns.rdataclass.IN


@dataclass(frozen=True)
class ZoneCut:
    """What was learned about one zone: its DS RRset (with RRSIGs) from the parent, or the
    parent's NSEC/NSEC3 records (with RRSIGs) proving there is none, and the zone's own DNSKEY
    RRset (with RRSIGs). RRSIGs travel as RRSIG RRsets, as in a DNS message section."""

    name: dns.name.Name
    ds: tuple[dns.rrset.RRset, ...] = ()
    ds_denial: tuple[dns.rrset.RRset, ...] = ()
    dnskey: tuple[dns.rrset.RRset, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """Everything gathered for one question. `zones` lists every zone between a trust anchor
    and the zones the answer touches (a zone under an anchor needs its DS link to be known)."""

    question: Question
    rcode: int = dns.rcode.NOERROR
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    zones: tuple[ZoneCut, ...] = ()

    @classmethod
    def from_message(cls, message: dns.message.Message, zones: Iterable[ZoneCut] = ()) -> Evidence:
        """The question, rcode and sections of a response, as a tracer receives it."""
        q = message.question[0]
        return cls(Question(q.name, q.rdtype, q.rdclass), message.rcode(),
                   tuple(message.answer), tuple(message.authority), tuple(zones))


@dataclass(frozen=True)
class Link:
    """One link checked: a trust anchor or DS matching a DNSKEY, a key verifying an RRSIG, a
    proof of a DS's absence, or a denial proof."""

    zone: dns.name.Name
    kind: str  # "anchor" | "ds" | "rrsig" | "no-ds" | "denial"
    name: dns.name.Name
    rdtype: int
    key_tag: int | None = None
    algorithm: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        key = f" key {self.key_tag}/{self.algorithm}" if self.key_tag is not None else ""
        return (f"{self.zone} {self.kind}: {self.name} {dns.rdatatype.to_text(self.rdtype)}"
                f"{key}: {self.detail}")

    def to_dict(self) -> dict[str, object]:
        return {
            "zone": self.zone.to_text(), "kind": self.kind, "name": self.name.to_text(),
            "type": dns.rdatatype.to_text(self.rdtype), "key_tag": self.key_tag,
            "algorithm": self.algorithm, "detail": self.detail,
        }


@dataclass(frozen=True)
class Verdict:
    status: Status
    kind: Kind
    ttl: int | None  # validated TTL; None when bogus
    links: tuple[Link, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def ede(self) -> tuple[int, ...]:
        """The RFC 8914 EDE codes of the findings, first occurrence first."""
        return tuple(dict.fromkeys(f.ede for f in self.findings if f.ede is not None))

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value, "kind": self.kind.value, "ttl": self.ttl,
            "ede": list(self.ede), "links": [link.to_dict() for link in self.links],
            "findings": [f.to_dict() for f in self.findings],
        }

