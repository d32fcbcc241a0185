"""Which denial of existence a (re-)signed zone gets: the input's own chain (NSEC, or NSEC3 with
its NSEC3PARAM), unless the command asks for another, as dnssec-signzone keeps an existing chain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from dns.rdatatype import RdataType

from sigchain.core.zone.nsec3hash import Nsec3Params
from sigchain.core.zone.records import Key, RRsetRec
from sigchain.errors import InputError
from sigchain.findings import Finding


@dataclass(frozen=True)
class DenialRequest:
    """What the command asked for. `kind` None keeps the input's chain (NSEC for an unsigned
    zone); a field left None takes the input's NSEC3 value (else 0 iterations, no salt, no
    opt-out, RFC 9276)."""

    kind: str | None = None  # "nsec" | "nsec3" | None
    iterations: int | None = None
    salt: bytes | None = None
    opt_out: bool | None = None

    @property
    def names_nsec3_fields(self) -> bool:
        return self.iterations is not None or self.salt is not None or self.opt_out is not None


@dataclass(frozen=True)
class Denial:
    kind: str | None  # "nsec" | "nsec3" | None (no chain)
    nsec3: Nsec3Params | None = None

    def describe(self) -> str:
        if self.nsec3 is None:
            return self.kind.upper() if self.kind else "none"
        p = self.nsec3
        salt = p.salt.hex().upper() or "-"
        return f"NSEC3 (iterations {p.iterations}, salt {salt}, opt-out {'yes' if p.opt_out else 'no'})"


def _nsec3_fields(text: str) -> tuple[int, int, bytes]:
    """(flags, iterations, salt) from NSEC3PARAM or NSEC3 presentation rdata."""
    parts = text.split()
    return int(parts[1]), int(parts[2]), b"" if parts[3] == "-" else bytes.fromhex(parts[3])


def found_denial(rrsets: Iterable[RRsetRec], okey: Key) -> Denial:
    """The chain the input zone has: NSEC3 (parameters from its NSEC3PARAM, else its NSEC3
    records; opt-out from the NSEC3 records' flags), NSEC, or none."""
    param: tuple[int, int, bytes] | None = None
    nsec3: tuple[int, int, bytes] | None = None
    opt_out = has_nsec = False
    for r in rrsets:
        if r.rdtype == RdataType.NSEC3PARAM and r.key == okey and param is None:
            param = _nsec3_fields(r.texts[0])
        elif r.rdtype == RdataType.NSEC3:
            fields = _nsec3_fields(r.texts[0])
            nsec3 = nsec3 or fields
            opt_out = opt_out or bool(fields[0] & 1)
        elif r.rdtype == RdataType.NSEC:
            has_nsec = True
    chosen = param or nsec3
    if chosen is not None:
        return Denial("nsec3", Nsec3Params(chosen[1], chosen[2], opt_out))
    return Denial("nsec" if has_nsec else None)


def choose(request: DenialRequest, found: Denial) -> tuple[Denial, list[Finding]]:
    """The denial to sign with, and a SIGN_DENIAL_CHANGED warning when it differs from the
    signed input's. NSEC3 fields named without NSEC3 to apply them to are refused."""
    kind = request.kind or found.kind or "nsec"
    if kind == "nsec":
        if request.names_nsec3_fields:
            raise InputError("--iterations, --salt and --opt-out need NSEC3 (--nsec3, or an "
                             "NSEC3-signed input)")
        chosen = Denial("nsec")
    else:
        base = found.nsec3 if found.nsec3 is not None else Nsec3Params()
        asked = {
            k: v for k, v in (("iterations", request.iterations), ("salt", request.salt),
                              ("opt_out", request.opt_out)) if v is not None
        }
        chosen = Denial("nsec3", replace(base, **asked))  # type: ignore[arg-type]
    warnings = []
    if found.kind is not None and chosen != found:
        warnings.append(Finding("SIGN_DENIAL_CHANGED", {"found": found.describe(),
                                                        "signed": chosen.describe()}))
    return chosen, warnings
