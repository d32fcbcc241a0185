"""RR types of RFC 1035 that dnspython does not know, whose RDATA is domain names: MD, MF,
MB, MG, MR (one name) and MINFO (two). Unknown to dnspython, they were read only in RFC 3597
form and kept as opaque bytes, so their names were not lower-cased in the canonical form
(RFC 4034 §6.2, RFC 3597 §7): signatures made over them were bogus to every validator, and
correct ones failed our checks. Registered (by this package's __init__), they are
read in text or RFC 3597 form, and their names are lower-cased as the RFCs list."""

from __future__ import annotations

import dns.immutable
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.RP
import dns.rdtypes.nsbase


@dns.immutable.immutable
class MD(dns.rdtypes.nsbase.NSBase):
    """MD record (RFC 1035 §3.3.4, obsolete): a mail destination."""


@dns.immutable.immutable
class MF(dns.rdtypes.nsbase.NSBase):
    """MF record (RFC 1035 §3.3.5, obsolete): a mail forwarder."""


@dns.immutable.immutable
class MB(dns.rdtypes.nsbase.NSBase):
    """MB record (RFC 1035 §3.3.3): a mailbox's host."""


@dns.immutable.immutable
class MG(dns.rdtypes.nsbase.NSBase):
    """MG record (RFC 1035 §3.3.6): a mail group member."""


@dns.immutable.immutable
class MR(dns.rdtypes.nsbase.NSBase):
    """MR record (RFC 1035 §3.3.8): a mail rename."""


@dns.immutable.immutable
class MINFO(dns.rdtypes.ANY.RP.RP):
    """MINFO record (RFC 1035 §3.3.7): RMAILBX and EMAILBX, two names (RP's layout)."""


# Type mnemonics BIND writes (in NSEC/NSEC3 bitmaps, RRSIG type fields) that dnspython does
# not know: names only, their RDATA stays in RFC 3597 form. Without them a zone BIND signed
# holding such a type could not be read at all.
MNEMONICS = {31: "EID", 32: "NIMLOC", 34: "ATMA", 40: "SINK", 57: "RKEY", 58: "TALINK",
             100: "UINFO", 101: "UID", 102: "GID", 259: "DOA"}


def register() -> None:
    """Each type (class IN, the one zones hold), and each mnemonic, unless dnspython knows
    it already."""
    for cls, rdtype in ((MD, 3), (MF, 4), (MB, 7), (MG, 8), (MR, 9), (MINFO, 14)):
        if dns.rdata.get_rdata_class(dns.rdataclass.IN, rdtype) is dns.rdata.GenericRdata:
            dns.rdata.register_type(cls, rdtype, cls.__name__, rdclass=dns.rdataclass.IN)
    for rdtype, name in MNEMONICS.items():
        if dns.rdatatype.to_text(rdtype).startswith("TYPE"):
            dns.rdatatype.register_type(rdtype, name)
