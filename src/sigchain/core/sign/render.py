"""Master-file text of what the signer writes: RRSIG timestamps and the NSEC/NSEC3 records
built from the chain entries."""

from __future__ import annotations

import struct

import dns.name
from dns.rdatatype import RdataType

from sigchain.core.dnssec.timefmt import format_timestamp14
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.records import RRsetRec, b32hex_decode, key_of, key_wire, name_of


class Timestamps:
    """YYYYMMDDHHMMSS for 32-bit RRSIG times, by arithmetic within a day: with jitter, nearly
    every signature has its own expiration, and strftime per signature is slow."""

    def __init__(self) -> None:
        self.days: dict[int, str] = {}

    def __call__(self, t: int) -> str:
        day, sec = divmod(t, 86400)
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = format_timestamp14(day * 86400)[:8]
        return f"{prefix}{sec // 3600:02d}{sec // 60 % 60:02d}{sec % 60:02d}"


def denial_units(
    entries: list[tuple],  # type: ignore[type-arg]
    ttl: int,
    p: nsec3hash.Nsec3Params | None,
    signer_wire: bytes,
    signer_text: str,
    role: int,
) -> list[tuple[RRsetRec, int]]:
    """Build a batch's NSEC or NSEC3 RRsets (wire and text) from the chain entries `prepare`
    sent (see `chains`), each paired with `role` (who signs it)."""
    out: list[tuple[RRsetRec, int]] = []
    if p is None:
        for k, owner, nk, (bits, bits_text) in entries:
            out.append((RRsetRec(
                k, owner, RdataType.NSEC, ttl, (key_wire(nk) + bits,), (f"{name_of(nk).to_text()} {bits_text}",),
            ), role))
        return out
    okey = key_of(dns.name.from_wire(signer_wire, 0)[0])
    suffix = "." + signer_text if signer_text != "." else "."  # (the root's: "HASH.")
    flags = nsec3hash.NSEC3_FLAG_OPTOUT if p.opt_out else 0
    head = struct.pack("!BBHB", p.algorithm, flags, p.iterations, len(p.salt)) + p.salt
    fields = f"{p.algorithm} {flags} {p.iterations} {p.salt.hex().upper() or '-'} "
    for label, next_label, (bits, bits_text) in entries:
        nxt = b32hex_decode(next_label)
        out.append((RRsetRec(
            okey + (label,), label.decode() + suffix, RdataType.NSEC3, ttl,
            (head + bytes((len(nxt),)) + nxt + bits,),
            ((fields + next_label.decode().upper() + " " + bits_text).rstrip(),),
        ), role))
    return out
