"""DS, CDS and CDNSKEY from DNSKEYs, and whether a DS matches a DNSKEY (pure; RFC 4034 §5,
RFC 4509, RFC 6605, RFC 7344). Which digest types may be created or validated is the
policy's (core/dnssec/policy); the digest itself is computed here, once."""

from __future__ import annotations

import hashlib

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CDNSKEY
import dns.rdtypes.ANY.CDS
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS

from sigchain.core.dnssec.policy import DEFAULT_POLICY, DIGEST_HASHES, DnssecPolicy
from sigchain.memo import Kept


def digest(owner: dns.name.Name, dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY, digest_type: int) -> bytes:
    """RFC 4034 §5.1.4: the digest over the canonical owner name and the DNSKEY RDATA.
    `digest_type` must be one of DIGEST_HASHES."""
    wire = owner.canonicalize().to_wire()
    assert wire is not None
    return hashlib.new(DIGEST_HASHES[digest_type], wire + dnskey.to_digestable()).digest()


def make_ds(
    owner: dns.name.Name, dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY, digest_type: int,
    policy: DnssecPolicy = DEFAULT_POLICY,
) -> dns.rdtypes.ANY.DS.DS:
    """A DS for `dnskey` with a digest type the policy allows creating (InputError if not)."""
    policy.check_create_digest(digest_type)
    return dns.rdtypes.ANY.DS.DS(
        dns.rdataclass.IN, dns.rdatatype.DS, dns.dnssec.key_id(dnskey), dnskey.algorithm, digest_type,
        digest(owner, dnskey, digest_type),
    )


_TAGS: Kept[tuple[int, int, int, bytes], int] = Kept(4096)


def key_tag(rd: dns.rdtypes.ANY.DNSKEY.DNSKEY) -> int:
    """The key tag (RFC 4034 Appendix B), remembered by the key's fields: a resolver meets
    the same few keys for every name, and dnspython renders the record to count it."""
    fields = (rd.flags, rd.protocol, rd.algorithm, rd.key)
    tag = _TAGS.get(fields)
    if tag is None:
        tag = _TAGS.keep(fields, dns.dnssec.key_id(rd))
    return tag


def ds_matches(
    owner: dns.name.Name, rd: dns.rdtypes.ANY.DS.DS, dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY,
    policy: DnssecPolicy = DEFAULT_POLICY,
) -> bool:
    """Whether DS `rd` at `owner` names `dnskey`: algorithm, key tag and a digest type the
    policy validates, with the same digest (RFC 4035 §5.2)."""
    return (
        policy.may_validate_digest(rd.digest_type)
        and rd.algorithm == dnskey.algorithm
        and rd.key_tag == key_tag(dnskey)
        and rd.digest == digest(owner, dnskey, rd.digest_type)
    )


def make_cds(
    owner: dns.name.Name, dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY, digest_type: int,
    policy: DnssecPolicy = DEFAULT_POLICY,
) -> dns.rdtypes.ANY.CDS.CDS:
    d = make_ds(owner, dnskey, digest_type, policy)
    return dns.rdtypes.ANY.CDS.CDS(
        dns.rdataclass.IN, dns.rdatatype.CDS, d.key_tag, d.algorithm, d.digest_type, d.digest
    )


def make_cdnskey(dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY) -> dns.rdtypes.ANY.CDNSKEY.CDNSKEY:
    return dns.rdtypes.ANY.CDNSKEY.CDNSKEY(
        dns.rdataclass.IN, dns.rdatatype.CDNSKEY, dnskey.flags, dnskey.protocol,
        dnskey.algorithm, dnskey.key,
    )


def ds_text(owner: dns.name.Name, rd: dns.rdtypes.ANY.DS.DS, rrtype: str = "DS") -> str:
    """One line exactly as `dnssec-dsfromkey` prints it (upper-case hex, no TTL)."""
    return (
        f"{owner.to_text()} IN {rrtype} {rd.key_tag} {rd.algorithm} {rd.digest_type} "
        f"{rd.digest.hex().upper()}"
    )


def cdnskey_text(owner: dns.name.Name, rd: dns.rdtypes.ANY.DNSKEY.DNSKEY) -> str:
    import base64

    key = base64.b64encode(rd.key).decode("ascii")
    return f"{owner.to_text()} IN CDNSKEY {rd.flags} {rd.protocol} {rd.algorithm} {key}"
