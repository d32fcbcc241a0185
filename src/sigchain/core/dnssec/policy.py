"""The one DNSSEC policy object (pure): which algorithms and DS digests may be used to sign,
to create or to validate, the NSEC3 iteration limit, and the validator's work caps.

dnspython's `dns.dnssec.Policy` is the model: the rules are data handed to the signer, `ds`,
the validator and the verifier, never globals they consult. `DEFAULT_POLICY` follows
RFC 8624 / RFC 9904 (algorithms), RFC 8624 §3.3 (digests) and RFC 9276 (NSEC3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.algorithms import Algorithm
from sigchain.errors import InputError, UnsafeRefused

# DS digest types and the hash each names (RFC 4034 §5.1.4, RFC 4509, RFC 6605 §6); GOST (3)
# is not implemented.
DIGEST_HASHES = {1: "sha1", 2: "sha256", 4: "sha384"}
DIGEST_NAMES = {1: "SHA-1", 2: "SHA-256", 4: "SHA-384"}


@dataclass(frozen=True)
class ValidationLimits:
    """Work caps for one validation (CVE-2023-50387 KeyTrap, CVE-2023-50868 NSEC3)."""

    max_verifications_per_rrset: int = 8
    max_keys_per_tag: int = 4
    max_verifications: int = 64  # per question
    max_nsec3_hashes: int = 150  # per question
    clock_skew: int = 0  # seconds of leeway on both ends of an RRSIG validity window


def _implemented(pred: str) -> frozenset[int]:
    return frozenset(
        a.number for a in algorithms.ALGORITHMS.values() if a.family != "none" and getattr(a, pred)
    )


@dataclass(frozen=True)
class DnssecPolicy:
    """What may be signed with, created and validated; handed to every part that decides."""

    sign_algorithms: frozenset[int] = field(default_factory=lambda: _implemented("may_sign"))
    validate_algorithms: frozenset[int] = field(
        default_factory=lambda: _implemented("may_validate")
    )
    create_digests: frozenset[int] = frozenset({2, 4})  # RFC 8624 §3.3: SHA-1 MUST NOT
    validate_digests: frozenset[int] = frozenset(DIGEST_HASHES)
    # RFC 9276 §3.2: above this a validator treats the zone as insecure (BIND and Unbound
    # use 150), so the signer refuses it unless forced.
    max_nsec3_iterations: int = 150
    limits: ValidationLimits = field(default_factory=ValidationLimits)

    def may_validate(self, algorithm: int) -> bool:
        """RFC 8624 §3.1 / RFC 9904: an algorithm we implement and may validate with."""
        return algorithm in self.validate_algorithms

    def may_validate_digest(self, digest_type: int) -> bool:
        return digest_type in self.validate_digests

    def check_may_sign(self, alg: Algorithm, force: bool) -> None:
        """Refuse an algorithm this policy forbids for signing (and key creation), unless
        forced; one we cannot sign with at all is refused even then."""
        if alg.family == "none":
            raise UnsafeRefused(
                f"algorithm {alg.number} ({alg.mnemonic}) is not supported for signing"
            )
        if alg.number not in self.sign_algorithms and not force:
            raise UnsafeRefused(
                f"algorithm {alg.number} ({alg.mnemonic}) MUST NOT be used for signing "
                "(RFC 8624 §3.1, RFC 9904): use ecdsap256sha256, or --force for a legacy test zone"
            )

    def check_create_digest(self, digest_type: int) -> None:
        """Refuse a DS digest type this policy does not create (bad input, exit 2)."""
        if digest_type not in self.create_digests:
            names = ", ".join(f"{d} = {DIGEST_NAMES[d]}" for d in sorted(self.create_digests))
            raise InputError(f"unsupported DS digest type {digest_type} ({names})")

    def check_nsec3_iterations(self, iterations: int, force: bool) -> None:
        """RFC 9276 §3.2: refuse more iterations than validators accept, unless forced."""
        if not 0 <= iterations <= 65535:
            raise InputError(f"NSEC3 iterations {iterations} out of range 0..65535")
        if iterations > self.max_nsec3_iterations and not force:
            raise UnsafeRefused(
                f"NSEC3 iterations {iterations} is above {self.max_nsec3_iterations}: validators "
                "treat the zone as insecure (RFC 9276 §3.2); use 0, or --force for a test zone"
            )


DEFAULT_POLICY = DnssecPolicy()
