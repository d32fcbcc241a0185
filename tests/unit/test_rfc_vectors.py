"""Published DNSSEC test vectors, reproduced with sigchain's own code.

- RFC 6605 §6.1 / §6.2: ECDSA P-256 / P-384 (randomized signatures: the RFC's must verify, ours
  must verify with the RFC's key).
- RFC 8080 §6.1 / §6.2 as corrected by verified erratum 4935: Ed25519 / Ed448 (deterministic:
  ours must be byte-identical).
- RFC 5702 §6.1 / §6.2: RSA/SHA-256 / RSA/SHA-512 (PKCS#1 v1.5 is deterministic: byte-identical).
- RFC 5155 Appendix A: NSEC3 hashed owner names of the example zone.

Record data is copied from the documents in presentation form (line breaks kept) and parsed
with dnspython. The only edits: the stray extra "(" that RFC 8080 prints inside each RRSIG (it
leaves the parentheses unbalanced) is dropped, and RFC 5702's trailing ";{id = ...}" comments
are left out (their key tags are in `key_tag`). No field value is changed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.RRSIG
import pytest

from sigchain.core.dnssec import algorithms, ds, keyfile, rrsig
from sigchain.core.zone import nsec3hash
from sigchain.model.keys import KeyPair
from tests.zonetools import sign_rrset


def _rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text)


def _bind_private(rfc_text: str) -> str:
    """The RFC prints long private-key fields wrapped onto indented continuation lines; a BIND
    .private file has one "Field: value" per line, so join each continuation onto its field."""
    lines: list[str] = []
    for line in rfc_text.splitlines():
        if line[:1].isspace() and lines:
            lines[-1] += line.strip()
        elif line.strip():
            lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Vector:
    """One worked example: a private key, its DNSKEY/DS, and an RRset with its RRSIG."""

    id: str
    zone: str
    private: str  # Private-key-format text exactly as printed in the RFC (wrapped lines)
    dnskey: str  # DNSKEY rdata
    key_tag: int  # as the RFC prints it (RRSIG / DS / "id =" comment)
    ds: tuple[str, ...]  # DS rdatas (the RFC's digest types)
    owner: str
    ttl: int
    rrtype: str
    rdatas: tuple[str, ...]
    rrsig: str  # RRSIG rdata

    # -- derived objects --------------------------------------------------------------------

    def zone_name(self) -> dns.name.Name:
        return dns.name.from_text(self.zone)

    def owner_name(self) -> dns.name.Name:
        return dns.name.from_text(self.owner)

    def rfc_dnskey(self) -> dns.rdtypes.ANY.DNSKEY.DNSKEY:
        rd = _rdata("DNSKEY", self.dnskey)
        assert isinstance(rd, dns.rdtypes.ANY.DNSKEY.DNSKEY)
        return rd

    def rfc_rrsig(self) -> dns.rdtypes.ANY.RRSIG.RRSIG:
        rd = _rdata("RRSIG", self.rrsig)
        assert isinstance(rd, dns.rdtypes.ANY.RRSIG.RRSIG)
        return rd

    def rrset(self) -> list[dns.rdata.Rdata]:
        return [_rdata(self.rrtype, t) for t in self.rdatas]

    def keypair(self) -> KeyPair:
        """Our KeyPair, built from the RFC's private key only (the DNSKEY is recomputed)."""
        text = _bind_private(self.private)
        alg, key, timing = keyfile.private_from_text(text, f"{self.id}.private")
        dnskey = keyfile.make_dnskey(alg, key, self.rfc_dnskey().flags)
        return KeyPair(zone=self.zone_name(), algorithm=alg.number, dnskey=dnskey,
                       private=key, timing=timing)

    def signed_data(self, sig: dns.rdtypes.ANY.RRSIG.RRSIG) -> bytes:
        """RRSIG RDATA (minus signature) + canonical RRset, rebuilt from the RRSIG's fields."""
        header = rrsig.rrsig_header(
            sig.type_covered, sig.algorithm, sig.labels, sig.original_ttl,
            sig.expiration, sig.inception, sig.key_tag, sig.signer,
        )
        return rrsig.signature_data(
            self.owner_name(), sig.type_covered, dns.rdataclass.IN, sig.original_ttl,
            self.rrset(), header,
        )

    def rfc_public_key(self) -> algorithms.PublicKey:
        dnskey = self.rfc_dnskey()
        return algorithms.public_key_from_dnskey(algorithms.get(dnskey.algorithm), dnskey.key)

    def sign(self, deterministic: bool = False) -> dns.rdtypes.ANY.RRSIG.RRSIG:
        """Sign the RFC's RRset with sigchain, with the RFC's RRSIG timing fields."""
        ref = self.rfc_rrsig()
        return sign_rrset(
            self.owner_name(), dns.rdatatype.from_text(self.rrtype), self.ttl, self.rrset(),
            self.keypair(), ref.signer, ref.inception, ref.expiration, deterministic,
        )


def _ids(vectors: list[Vector]) -> list[str]:
    return [v.id for v in vectors]


# ---------------------------------------------------------------------------------------------
# RFC 6605 §6: ECDSA
# ---------------------------------------------------------------------------------------------

RFC6605 = [
    Vector(
        id="rfc6605-6.1-p256",
        zone="example.net.",
        private="""Private-key-format: v1.2
Algorithm: 13 (ECDSAP256SHA256)
PrivateKey: GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=
""",
        dnskey="""257 3 13 (
                GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edb
                krSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA== )""",
        key_tag=55648,
        ds=("""55648 13 2 (
                b4c8c1fe2e7477127b27115656ad6256f424625bf5c1
                e2770ce6d6e37df61d17 )""",),
        owner="www.example.net.",
        ttl=3600,
        rrtype="A",
        rdatas=("192.0.2.1",),
        rrsig="""A 13 3 3600 (
                20100909100439 20100812100439 55648 example.net.
                qx6wLYqmh+l9oCKTN6qIc+bw6ya+KJ8oMz0YP107epXA
                yGmt+3SNruPFKG7tZoLBLlUzGGus7ZwmwWep666VCw== )""",
    ),
    Vector(
        id="rfc6605-6.2-p384",
        zone="example.net.",
        private="""Private-key-format: v1.2
Algorithm: 14 (ECDSAP384SHA384)
PrivateKey: WURgWHCcYIYUPWgeLmiPY2DJJk02vgrmTfitxgqcL4vwW7BOrbawVmVe0d9V94SR
""",
        dnskey="""257 3 14 (
                xKYaNhWdGOfJ+nPrL8/arkwf2EY3MDJ+SErKivBVSum1
                w/egsXvSADtNJhyem5RCOpgQ6K8X1DRSEkrbYQ+OB+v8
                /uX45NBwY8rp65F6Glur8I/mlVNgF6W/qTI37m40 )""",
        key_tag=10771,
        ds=("""10771 14 4 (
                72d7b62976ce06438e9c0bf319013cf801f09ecc84b8
                d7e9495f27e305c6a9b0563a9b5f4d288405c3008a94
                6df983d6 )""",),
        owner="www.example.net.",
        ttl=3600,
        rrtype="A",
        rdatas=("192.0.2.1",),
        rrsig="""A 14 3 3600 (
                20100909102025 20100812102025 10771 example.net.
                /L5hDKIvGDyI1fcARX3z65qrmPsVz73QD1Mr5CEqOiLP
                95hxQouuroGCeZOvzFaxsT8Glr74hbavRKayJNuydCuz
                WTSSPdz7wnqXL5bdcJzusdnI0RSMROxxwGipWcJm )""",
    ),
]


# ---------------------------------------------------------------------------------------------
# RFC 8080 §6: EdDSA, with the RRSIGs as corrected by verified erratum 4935 (algorithm field
# restored, Labels 2 instead of 3, signatures recomputed; keys and DS records unchanged).
# ---------------------------------------------------------------------------------------------

RFC8080 = [
    Vector(
        id="rfc8080-6.1-ed25519-1",
        zone="example.com.",
        private="""Private-key-format: v1.2
Algorithm: 15 (ED25519)
PrivateKey: ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=
""",
        dnskey="""257 3 15 (
             l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4= )""",
        key_tag=3613,
        ds=("""3613 15 2 (
             3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79
             a304b )""",),
        owner="example.com.",
        ttl=3600,
        rrtype="MX",
        rdatas=("10 mail.example.com.",),
        rrsig="""MX 15 2 3600 (
             1440021600 1438207200 3613 example.com.
             oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGrHpjQeRAvTdszaPD+QLs3f
             x8A4M3e23mRZ9VrbpMngwcrqNAg== )""",
    ),
    Vector(
        id="rfc8080-6.1-ed25519-2",
        zone="example.com.",
        private="""Private-key-format: v1.2
Algorithm: 15 (ED25519)
PrivateKey: DSSF3o0s0f+ElWzj9E/Osxw8hLpk55chkmx0LYN5WiY=
""",
        dnskey="""257 3 15 (
             zPnZ/QwEe7S8C5SPz2OfS5RR40ATk2/rYnE9xHIEijs= )""",
        key_tag=35217,
        ds=("""35217 15 2 (
             401781b934e392de492ec77ae2e15d70f6575a1c0bc59c5275c04ebe80c
             6614c )""",),
        owner="example.com.",
        ttl=3600,
        rrtype="MX",
        rdatas=("10 mail.example.com.",),
        rrsig="""MX 15 2 3600 (
             1440021600 1438207200 35217 example.com.
             zXQ0bkYgQTEFyfLyi9QoiY6D8ZdYo4wyUhVioYZXFdT410QPRITQSqJSnzQ
             oSm5poJ7gD7AQR0O7KuI5k2pcBg== )""",
    ),
    Vector(
        id="rfc8080-6.2-ed448-1",
        zone="example.com.",
        private="""Private-key-format: v1.2
Algorithm: 16 (ED448)
PrivateKey: xZ+5Cgm463xugtkY5B0Jx6erFTXp13rYegst0qRtNsOYnaVpMx0Z/c5EiA9x
            8wWbDDct/U3FhYWA
""",
        dnskey="""257 3 16 (
             3kgROaDjrh0H2iuixWBrc8g2EpBBLCdGzHmn+G2MpTPhpj/OiBVHHSfPodx
             1FYYUcJKm1MDpJtIA )""",
        key_tag=9713,
        ds=("""9713 16 2 (
             6ccf18d5bc5d7fc2fceb1d59d17321402f2aa8d368048db93dd811f5cb2
             b19c7 )""",),
        owner="example.com.",
        ttl=3600,
        rrtype="MX",
        rdatas=("10 mail.example.com.",),
        rrsig="""MX 16 2 3600 (
             1440021600 1438207200 9713 example.com.
             3cPAHkmlnxcDHMyg7vFC34l0blBhuG1qpwLmjInI8w1CMB29FkEAIJUA0am
             xWndkmnBZ6SKiwZSAxGILn/NBtOXft0+Gj7FSvOKxE/07+4RQvE581N3Aj/
             JtIyaiYVdnYtyMWbSNyGEY2213WKsJlwEA )""",
    ),
    Vector(
        id="rfc8080-6.2-ed448-2",
        zone="example.com.",
        private="""Private-key-format: v1.2
Algorithm: 16 (ED448)
PrivateKey: WEykD3ht3MHkU8iH4uVOLz8JLwtRBSqiBoM6fF72+Mrp/u5gjxuB1DV6NnPO
            2BlZdz4hdSTkOdOA
""",
        dnskey="""257 3 16 (
             kkreGWoccSDmUBGAe7+zsbG6ZAFQp+syPmYUurBRQc3tDjeMCJcVMRDmgcN
             Lp5HlHAMy12VoISsA )""",
        key_tag=38353,
        ds=("""38353 16 2 (
             645ff078b3568f5852b70cb60e8e696cc77b75bfaaffc118cf79cbda1ba
             28af4 )""",),
        owner="example.com.",
        ttl=3600,
        rrtype="MX",
        rdatas=("10 mail.example.com.",),
        rrsig="""MX 16 2 3600 (
             1440021600 1438207200 38353 example.com.
             E1/oLjSGIbmLny/4fcgM1z4oL6aqo+izT3urCyHyvEp4Sp8Syg1eI+lJ57C
             SnZqjJP41O/9l4m0AsQ4f7qI1gVnML8vWWiyW2KXhT9kuAICUSxv5OWbf81
             Rq7Yu60npabODB0QFPb/rkW3kUZmQ0YQUA )""",
    ),
]

# The RRSIG signatures RFC 8080 §6 originally printed, before erratum 4935, by vector id. The
# erratum explains them: they were computed over an RRSIG header with Labels = 3 (the root was
# counted as a label) instead of 2.
RFC8080_ORIGINAL_SIGNATURES = {
    "rfc8080-6.1-ed25519-1": """Edk+IB9KNNWg0HAjm7FazXyrd5m3Rk8zNZbvNpAcM+eysqcUOMIjWoevFkj
             H5GaMWeG96GUVZu6ECKOQmemHDg==""",
    "rfc8080-6.1-ed25519-2": """5LL2obmzdqjWI+Xto5eP5adXt/T5tMhasWvwcyW4L3SzfcRawOle9bodhC+
             oip9ayUGjY9T/rL4rN3bOuESGDA==""",
    "rfc8080-6.2-ed448-1": """Nmc0rgGKpr3GKYXcB1JmqqS4NYwhmechvJTqVzt3jR+Qy/lSLFoIk1L+9e3
             9GPL+5tVzDPN3f9kAwiu8KCuPPjtl227ayaCZtRKZuJax7n9NuYlZJIusX0
             SOIOKBGzG+yWYtz1/jjbzl5GGkWvREUCUA""",
    "rfc8080-6.2-ed448-2": """+JjANio/LIzp7osmMYE5XD3H/YES8kXs5Vb9H8MjPS8OAGZMD37+LsCIcjg
             5ivt0d4Om/UaqETEAsJjaYe56CEQP5lhRWuD2ivBqE0zfwJTyp4WqvpULbp
             vaukswvv/WNEFxzEYQEIm9+xDlXj4pMAMA""",
}


# ---------------------------------------------------------------------------------------------
# RFC 5702 §6: RSA/SHA-256 and RSA/SHA-512 (no DS records are given there)
# ---------------------------------------------------------------------------------------------

RFC5702 = [
    Vector(
        id="rfc5702-6.1-rsasha256",
        zone="example.net.",
        private="""Private-key-format: v1.2
Algorithm:       8 (RSASHA256)
Modulus:         wVwaxrHF2CK64aYKRUibLiH30KpPuPBjel7E8ZydQW1HYWHfoGm
                 idzC2RnhwCC293hCzw+TFR2nqn8OVSY5t2Q==
PublicExponent:  AQAB
PrivateExponent: UR44xX6zB3eaeyvTRzmskHADrPCmPWnr8dxsNwiDGHzrMKLN+i/
                 HAam+97HxIKVWNDH2ba9Mf1SA8xu9dcHZAQ==
Prime1:          4c8IvFu1AVXGWeFLLFh5vs7fbdzdC6U82fduE6KkSWk=
Prime2:          2zZpBE8ZXVnL74QjG4zINlDfH+EOEtjJJ3RtaYDugvE=
Exponent1:       G2xAPFfK0KGxGANDVNxd1K1c9wOmmJ51mGbzKFFNMFk=
Exponent2:       GYxP1Pa7CAwtHm8SAGX594qZVofOMhgd6YFCNyeVpKE=
Coefficient:     icQdNRjlZGPmuJm2TIadubcO8X7V4y07aVhX464tx8Q=
""",
        dnskey="""(256 3 8 AwEAAcFcGsaxxdgiuuGmCkVI
                 my4h99CqT7jwY3pexPGcnUFtR2Fh36BponcwtkZ4cAgtvd4Qs8P
                 kxUdp6p/DlUmObdk= )""",
        key_tag=9033,
        ds=(),
        owner="www.example.net.",
        ttl=3600,
        rrtype="A",
        rdatas=("192.0.2.91",),
        rrsig="""(A 8 3 3600 20300101000000
                 20000101000000 9033 example.net. kRCOH6u7l0QGy9qpC9
                 l1sLncJcOKFLJ7GhiUOibu4teYp5VE9RncriShZNz85mwlMgNEa
                 cFYK/lPtPiVYP4bwg==)""",
    ),
    Vector(
        id="rfc5702-6.2-rsasha512",
        zone="example.net.",
        private="""Private-key-format: v1.2
Algorithm:       10 (RSASHA512)
Modulus:         0eg1M5b563zoq4k5ZEOnWmd2/BvpjzedJVdfIsDcMuuhE5SQ3pf
                 Q7qmdaeMlC6Nf8DKGoUPGPXe06cP27/WRODtxXquSUytkO0kJDk
                 8KX8PtA0+yBWwy7UnZDyCkynO00Uuk8HPVtZeMO1pHtlAGVnc8V
                 jXZlNKdyit99waaE4s=
PublicExponent:  AQAB
PrivateExponent: rFS1IPbJllFFgFc33B5DDlC1egO8e81P4fFadODbp56V7sphKa6
                 AZQCx8NYAew6VXFFPAKTw41QdHnK5kIYOwxvfFDjDcUGza88qbj
                 yrDPSJenkeZbISMUSSqy7AMFzEolkk6WSn6k3thUVRgSlqDoOV3
                 SEIAsrB043XzGrKIVE=
Prime1:          8mbtsu9Tl9v7tKSHdCIeprLIQXQLzxlSZun5T1n/OjvXSUtvD7x
                 nZJ+LHqaBj1dIgMbCq2U8O04QVcK3TS9GiQ==
Prime2:          3a6gkfs74d0Jb7yL4j4adAif4fcp7ZrGt7G5NRVDDY/Mv4TERAK
                 Ma0TKN3okKE0A7X+Rv2K84mhT4QLDlllEcw==
Exponent1:       v3D5A9uuCn5rgVR7wgV8ba0/KSpsdSiLgsoA42GxiB1gvvs7gJM
                 MmVTDu/ZG1p1ZnpLbhh/S/Qd/MSwyNlxC+Q==
Exponent2:       m+ezf9dsDvYQK+gzjOLWYeKq5xWYBEYFGa3BLocMiF4oxkzOZ3J
                 PZSWU/h1Fjp5RV7aPP0Vmx+hNjYMPIQ8Y5w==
Coefficient:     Je5YhYpUron/WdOXjxNAxDubAp3i5X7UOUfhJcyIggqwY86IE0Q
                 /Bk0Dw4SC9zxnsimmdBXW2Izd8Lwuk8FQcQ==
""",
        dnskey="""(256 3 10 AwEAAdHoNTOW+et86KuJOWRD
                 p1pndvwb6Y83nSVXXyLA3DLroROUkN6X0O6pnWnjJQujX/AyhqFD
                 xj13tOnD9u/1kTg7cV6rklMrZDtJCQ5PCl/D7QNPsgVsMu1J2Q8g
                 pMpztNFLpPBz1bWXjDtaR7ZQBlZ3PFY12ZTSncorffcGmhOL
                 )""",
        key_tag=3740,
        ds=(),
        owner="www.example.net.",
        ttl=3600,
        rrtype="A",
        rdatas=("192.0.2.91",),
        rrsig="""(A 10 3 3600 20300101000000
                 20000101000000 3740 example.net. tsb4wnjRUDnB1BUi+t
                 6TMTXThjVnG+eCkWqjvvjhzQL1d0YRoOe0CbxrVDYd0xDtsuJRa
                 eUw1ep94PzEWzr0iGYgZBWm/zpq+9fOuagYJRfDqfReKBzMweOL
                 DiNa8iP5g9vMhpuv6OPlvpXwm9Sa9ZXIbNl1MBGk0fthPgxdDLw
                 =)""",
    ),
]

# Deterministic schemes: our signature must equal the published one byte for byte.
DETERMINISTIC = RFC8080 + RFC5702
ALL_SIGNED = RFC6605 + RFC8080 + RFC5702
WITH_DS = [v for v in ALL_SIGNED if v.ds]


# ---------------------------------------------------------------------------------------------
# Shared checks over every signature example (RFC 6605 §6, RFC 8080 §6 + erratum, RFC 5702 §6)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vec", ALL_SIGNED, ids=_ids(ALL_SIGNED))
def test_private_key_gives_rfc_dnskey(vec: Vector) -> None:
    """RFC 6605 §6, RFC 8080 §6, RFC 5702 §6: the public key derived from the example private
    key (via keyfile.private_from_text + algorithms.public_key_bytes) is the RFC's DNSKEY."""
    text = _bind_private(vec.private)
    alg, key, _ = keyfile.private_from_text(text, f"{vec.id}.private")
    rfc = vec.rfc_dnskey()
    assert alg.number == rfc.algorithm
    assert algorithms.public_key_bytes(alg, key) == rfc.key
    assert keyfile.make_dnskey(alg, key, rfc.flags) == rfc


@pytest.mark.parametrize("vec", ALL_SIGNED, ids=_ids(ALL_SIGNED))
def test_key_tag(vec: Vector) -> None:
    """RFC 6605 §6, RFC 8080 §6, RFC 5702 §6: our key's tag is the one the RFC prints."""
    kp = vec.keypair()
    assert kp.key_tag == vec.key_tag
    assert vec.rfc_rrsig().key_tag == vec.key_tag


@pytest.mark.parametrize("vec", WITH_DS, ids=_ids(WITH_DS))
def test_ds(vec: Vector) -> None:
    """RFC 6605 §6 (SHA-256 / SHA-384 DS), RFC 8080 §6 (SHA-256 DS): ds.make_ds over the DNSKEY
    derived from the private key reproduces the RFC's DS records."""
    dnskey = vec.keypair().dnskey
    for text in vec.ds:
        expected = _rdata("DS", text)
        got = ds.make_ds(vec.zone_name(), dnskey, expected.digest_type)
        assert got.digest.hex() == expected.digest.hex()
        assert (got.key_tag, got.algorithm, got.digest_type) == (
            expected.key_tag, expected.algorithm, expected.digest_type)
        assert got == expected


@pytest.mark.parametrize("vec", ALL_SIGNED, ids=_ids(ALL_SIGNED))
def test_rfc_rrsig_verifies(vec: Vector) -> None:
    """RFC 6605 §6, RFC 8080 §6 (erratum 4935), RFC 5702 §6: the RFC's RRSIG verifies with the
    RFC's DNSKEY over the data rebuilt by rrsig.rrsig_header + rrsig.signature_data."""
    sig = vec.rfc_rrsig()
    alg = algorithms.get(sig.algorithm)
    data = vec.signed_data(sig)
    assert algorithms.verify(alg, vec.rfc_public_key(), sig.signature, data)
    # ...and the check is real: one flipped bit in the signed data must break it.
    tampered = data[:-1] + bytes([data[-1] ^ 0x01])
    assert not algorithms.verify(alg, vec.rfc_public_key(), sig.signature, tampered)


@pytest.mark.parametrize("vec", ALL_SIGNED, ids=_ids(ALL_SIGNED))
def test_our_rrsig_fields_match_rfc(vec: Vector) -> None:
    """RFC 6605 §6, RFC 8080 §6 (erratum 4935), RFC 5702 §6: every RRSIG field sign_rrset
    writes (type covered, algorithm, labels, TTL, times, key tag, signer) is the RFC's."""
    ours, ref = vec.sign(), vec.rfc_rrsig()
    assert (ours.type_covered, ours.algorithm, ours.labels, ours.original_ttl) == (
        ref.type_covered, ref.algorithm, ref.labels, ref.original_ttl)
    assert (ours.expiration, ours.inception, ours.key_tag, ours.signer) == (
        ref.expiration, ref.inception, ref.key_tag, ref.signer)


# ---------------------------------------------------------------------------------------------
# RFC 6605 §6: randomized ECDSA — our signature must verify with the RFC's public key
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("deterministic", [False, True], ids=["random-k", "rfc6979-k"])
@pytest.mark.parametrize("vec", RFC6605, ids=_ids(RFC6605))
def test_rfc6605_our_signature_verifies_with_rfc_key(vec: Vector, deterministic: bool) -> None:
    """RFC 6605 §6.1 / §6.2: sign_rrset over www.example.net A with a KeyPair built from the
    RFC's private key; the signature verifies with the RFC's DNSKEY (and not over other data)."""
    ours = vec.sign(deterministic=deterministic)
    alg = algorithms.get(ours.algorithm)
    assert len(ours.signature) == 2 * alg.size
    data = vec.signed_data(ours)
    assert algorithms.verify(alg, vec.rfc_public_key(), ours.signature, data)
    assert not algorithms.verify(alg, vec.rfc_public_key(), ours.signature, data + b"\x00")


# ---------------------------------------------------------------------------------------------
# RFC 8080 §6 (erratum 4935) and RFC 5702 §6: deterministic — byte-identical signatures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vec", DETERMINISTIC, ids=_ids(DETERMINISTIC))
def test_signature_is_byte_identical(vec: Vector) -> None:
    """RFC 8080 §6 as corrected by erratum 4935 (Ed25519, Ed448) and RFC 5702 §6 (RSA/SHA-256,
    RSA/SHA-512): sign_rrset with the RFC's private key yields exactly the RFC's signature."""
    ours = vec.sign()
    assert ours.signature.hex() == vec.rfc_rrsig().signature.hex()
    assert ours == vec.rfc_rrsig()


@pytest.mark.parametrize("vec", RFC8080, ids=_ids(RFC8080))
def test_rfc8080_uncorrected_signatures_explained(vec: Vector) -> None:
    """RFC 8080 §6 before erratum 4935: the originally printed signatures do not verify over the
    correct data, and signing with Labels = 3 (the bug the erratum names) reproduces them."""
    original = base64.b64decode("".join(RFC8080_ORIGINAL_SIGNATURES[vec.id].split()))
    sig = vec.rfc_rrsig()
    alg = algorithms.get(sig.algorithm)
    assert original != sig.signature
    assert not algorithms.verify(alg, vec.rfc_public_key(), original, vec.signed_data(sig))
    assert sig.labels == 2
    buggy = sig.replace(labels=3)
    assert algorithms.sign(alg, vec.keypair().private, vec.signed_data(buggy)) == original


# ---------------------------------------------------------------------------------------------
# RFC 5155 Appendix A: NSEC3 hashes of the example zone (SHA-1, salt aabbccdd, 12 iterations)
# ---------------------------------------------------------------------------------------------

RFC5155_SALT = bytes.fromhex("aabbccdd")
RFC5155_ITERATIONS = 12

# The "H(name) = hash" list of Appendix A, plus the zone's name 2t7b4g4vsa5smi47k61mv5bv1a22bojr
# (an A record deliberately named like a hash), whose NSEC3 is kohar7mbb8dc2ce8a9qvl8hon4k53uhi.
RFC5155_HASHES = [
    ("example.", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
    ("a.example.", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
    ("ai.example.", "gjeqe526plbf1g8mklp59enfd789njgi"),
    ("ns1.example.", "2t7b4g4vsa5smi47k61mv5bv1a22bojr"),
    ("ns2.example.", "q04jkcevqvmu85r014c7dkba38o0ji5r"),
    ("w.example.", "k8udemvp1j2f7eg6jebps17vp3n8i58h"),
    ("*.w.example.", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
    ("x.w.example.", "b4um86eghhds6nea196smvmlo4ors995"),
    ("y.w.example.", "ji6neoaepv8b5o6k4ev33abha8ht9fgc"),
    ("x.y.w.example.", "2vptu5timamqttgl4luu9kg21e0aor3s"),
    ("xx.example.", "t644ebqk9bibcna874givr6joj62mlhv"),
    ("2t7b4g4vsa5smi47k61mv5bv1a22bojr.example.", "kohar7mbb8dc2ce8a9qvl8hon4k53uhi"),
]


@pytest.mark.parametrize("name,expected", RFC5155_HASHES, ids=[n for n, _ in RFC5155_HASHES])
def test_rfc5155_nsec3_hash(name: str, expected: str) -> None:
    """RFC 5155 Appendix A: nsec3hash.nsec3_digest + nsec3hash.b32hex give the hashed owner name."""
    digest = nsec3hash.nsec3_digest(dns.name.from_text(name), RFC5155_SALT, RFC5155_ITERATIONS)
    assert len(digest) == 20
    assert nsec3hash.b32hex(digest) == expected


def test_rfc5155_nsec3_owner_names() -> None:
    """RFC 5155 Appendix A: nsec3hash.nsec3_owner places every hash under the zone apex, and the
    hashed owner names of the example zone are all distinct."""
    origin = dns.name.from_text("example.")
    params = nsec3hash.Nsec3Params(iterations=RFC5155_ITERATIONS, salt=RFC5155_SALT)
    owners = [nsec3hash.nsec3_owner(dns.name.from_text(n), origin, params) for n, _ in RFC5155_HASHES]
    assert owners == [dns.name.from_text(f"{h}.example.") for _, h in RFC5155_HASHES]
    assert len(set(owners)) == len(owners)
