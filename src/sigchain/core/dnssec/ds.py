"""DS, CDS and CDNSKEY from DNSKEYs (pure; RFC 4034 §5, RFC 4509, RFC 6605, RFC 7344)."""

from __future__ import annotations

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CDNSKEY
import dns.rdtypes.ANY.CDS
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS

from sigchain.errors import InputError

DIGESTS = {2: "SHA256", 4: "SHA384"}


def make_ds(
    owner: dns.name.Name, dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY, digest: int
) -> dns.rdtypes.ANY.DS.DS:
    if digest not in DIGESTS:
        raise InputError(f"unsupported DS digest type {digest} (2 = SHA-256, 4 = SHA-384)")
    return dns.dnssec.make_ds(owner, dnskey, DIGESTS[digest])  # type: ignore[return-value]


def make_cds(
    owner: dns.name.Name, dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY, digest: int
) -> dns.rdtypes.ANY.CDS.CDS:
    d = make_ds(owner, dnskey, digest)
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
