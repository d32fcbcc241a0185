"""The denial-of-existence chain of a zone checked whole: NSEC (RFC 4035 §2.3, RFC 4034 §4.1)
or NSEC3 (RFC 5155 §7.1, RFC 9276), with RFC 9077 TTLs, on wire RRsets keyed by label tuples."""

from __future__ import annotations

import base64
import bisect
import struct
from collections.abc import Callable

from dns.rdatatype import RdataType

from sigchain.core.verify.report import VerifyReport
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.records import Key, key_wire_via, type_bitmap
from sigchain.core.zone.shape import (
    ZoneShape,
    bitmap_types,
    nsec3_covered,
    nsec3_types,
    nsec_types,
    type_text,
)
from sigchain.core.zone.wire import WireRRset, name_text, read_bitmap, read_name
from sigchain.findings import Param

Data = dict[Key, dict[int, WireRRset]]  # a zone's RRsets by owner and type
Text = Callable[[Key], str]  # an owner's presentation form


def check_nsec(rep: VerifyReport, data: Data, zshape: ZoneShape, ttl: int, text: Text) -> None:
    """RFC 4035 §2.3: one NSEC at each authoritative name, none elsewhere, each linking to the
    next name in canonical order and listing the name's types; RFC 9077 TTL."""
    expected = zshape.authoritative()
    expected_set = set(expected)
    for name in sorted(data):
        if RdataType.NSEC in data[name] and name not in expected_set:
            rep.add("NSEC_CHAIN_BROKEN", {"record": "NSEC", "field": "owner", "found": text(name),
                    "expected": "an authoritative name"}, text(name), RdataType.NSEC)
    ttl_reported = False
    for i, name in enumerate(expected):
        rr = data.get(name, {}).get(RdataType.NSEC)
        if rr is None:
            rep.add("NSEC_MISSING", {}, text(name))
            continue
        if len(rr.wires) != 1:
            rep.add("NSEC_CHAIN_BROKEN", _one_record("NSEC", len(rr.wires)), text(name), RdataType.NSEC)
        wire = rr.wires[0]
        next_labels, end = read_name(wire, 0)
        nxt = expected[(i + 1) % len(expected)]
        if tuple(label.lower() for label in reversed(next_labels)) != nxt:
            rep.add("NSEC_CHAIN_BROKEN", {"record": "NSEC", "field": "next name",
                    "found": name_text(next_labels), "expected": text(nxt)}, text(name), RdataType.NSEC)
        diff = _bitmap_check(wire, end, nsec_types(zshape.kinds[name], data[name]))
        if diff:
            rep.add("NSEC_BITMAP_WRONG", diff, text(name), RdataType.NSEC)
        if rr.ttl != ttl and not ttl_reported:
            ttl_reported = True
            rep.add("NSEC_TTL_WRONG", {"record": "NSEC", "ttl": rr.ttl, "expected": ttl}, text(name),
                    RdataType.NSEC)


_bitmaps: dict[tuple[int, ...], bytes] = {}


def _bitmap_check(wire: bytes, pos: int, want: list[int]) -> dict[str, Param] | None:
    """None when the type bitmap at `pos` lists exactly `want` (sorted), else what differs.
    A zone has few distinct type sets: their canonical bitmaps are kept and compared whole."""
    key = tuple(want)
    expected = _bitmaps.get(key)
    if expected is None:
        expected = _bitmaps[key] = type_bitmap(want)[0]
    if wire[pos:] == expected:
        return None
    have = bitmap_types(read_bitmap(wire, pos))
    return _bitmap_diff(have, set(want)) if have != set(want) else None


def _bitmap_diff(have: set[int], want: set[int]) -> dict[str, Param]:
    """The types a bitmap lacks and the types it lists that are not there."""
    return {"missing": [type_text(t) for t in sorted(want - have)],
            "extra": [type_text(t) for t in sorted(have - want)]}


def _one_record(record: str, count: int) -> dict[str, Param]:
    return {"record": record, "field": "records at one name", "found": count, "expected": 1}


def _params_text(alg: int, iterations: int, salt: bytes) -> str:
    """NSEC3 parameters as NSEC3PARAM presents them: algorithm, iterations, salt (RFC 5155 §4.3)."""
    return f"{alg} {iterations} {salt.hex().upper() or '-'}"


def _nsec3_fields(wire: bytes) -> tuple[int, int, int, bytes, int]:
    """(algorithm, flags, iterations, salt, offset after the salt) of NSEC3 or NSEC3PARAM."""
    alg, flags, iterations, salt_len = struct.unpack_from("!BBHB", wire)
    return alg, flags, iterations, wire[5 : 5 + salt_len], 5 + salt_len


def check_nsec3(rep: VerifyReport, data: Data, zshape: ZoneShape, ttl: int, text: Text) -> None:
    """RFC 5155 §7.1: uniform parameters (RFC 9276 advice on them), a closed chain in hash
    order, every name that needs one covered, and correct type bitmaps."""
    records = [(n, rs[RdataType.NSEC3]) for n, rs in data.items() if RdataType.NSEC3 in rs]
    params = _nsec3_params(rep, data[zshape.origin].get(RdataType.NSEC3PARAM), records)
    if params is None:
        return
    chain, opt_out = _nsec3_chain(rep, records, params, zshape.origin, ttl, text)
    if opt_out:
        rep.add("NSEC3_OPT_OUT", {}, rep.origin, RdataType.NSEC3)
    _nsec3_links(rep, chain, params, opt_out, zshape, data, text)


_Params = tuple[int, int, bytes]  # hash algorithm, iterations, salt
# digest → (owner, next hashed owner, NSEC3 wire, where its type bitmap starts)
_Chain = dict[bytes, tuple[Key, bytes, bytes, int]]


def _nsec3_params(rep: VerifyReport, param_rr: WireRRset | None,
                  records: list[tuple[Key, WireRRset]]) -> _Params | None:
    """The zone's NSEC3 parameters (from NSEC3PARAM, else the first NSEC3), reported on; None
    when there are none or their hash algorithm is unknown."""
    origin = rep.origin
    source = param_rr if param_rr is not None else (records[0][1] if records else None)
    if param_rr is None:
        rep.add("NSEC3PARAM_MISSING", {}, origin)
    if source is None:
        return None
    alg, _, iterations, salt, _ = _nsec3_fields(source.wires[0])
    rep.nsec3 = {"algorithm": alg, "iterations": iterations, "salt": salt.hex() or "-"}
    if iterations > 0:
        rep.add("NSEC3_ITERATIONS_NONZERO", {"iterations": iterations}, origin, RdataType.NSEC3PARAM)
    if salt:
        rep.add("NSEC3_SALT_PRESENT", {"salt": salt.hex()}, origin, RdataType.NSEC3PARAM)
    if alg != nsec3hash.NSEC3_SHA1:
        rep.add("NSEC3_PARAMS_INCONSISTENT", {"field": "hash algorithm", "found": alg,
                "expected": nsec3hash.NSEC3_SHA1}, origin, RdataType.NSEC3PARAM)
        return None
    return alg, iterations, salt


def _hash_label(owner: Key, okey: Key) -> bytes | None:
    """The digest an NSEC3 owner name spells: one base32hex label right under the apex."""
    if len(owner) != len(okey) + 1 or owner[:-1] != okey:
        return None
    label = owner[-1]
    try:
        if len(label) % 8 == 0 and label.isalnum():  # base32hex digits are int()'s base 32
            return int(label, 32).to_bytes(len(label) * 5 // 8, "big")
        return base64.b32hexdecode(label.upper())
    except (ValueError, TypeError):
        return None


def _nsec3_chain(rep: VerifyReport, records: list[tuple[Key, WireRRset]], params: _Params, okey: Key,
                 ttl: int, text: Text) -> tuple[_Chain, bool]:
    """The NSEC3 records by digest, each checked alone (count, parameters, owner, TTL), and
    whether any sets opt-out."""
    chain: _Chain = {}
    opt_out = False
    inconsistent = False
    for owner, rr in records:
        if len(rr.wires) != 1:
            rep.add("NSEC3_CHAIN_BROKEN", _one_record("NSEC3", len(rr.wires)), text(owner), RdataType.NSEC3)
        r_alg, flags, r_iterations, r_salt, pos = _nsec3_fields(rr.wires[0])
        if (r_alg, r_iterations, r_salt) != params:
            if not inconsistent:
                rep.add("NSEC3_PARAMS_INCONSISTENT", {"field": "parameters",
                        "found": _params_text(r_alg, r_iterations, r_salt),
                        "expected": _params_text(*params)}, text(owner), RdataType.NSEC3)
            inconsistent = True
            continue
        opt_out = opt_out or bool(flags & nsec3hash.NSEC3_FLAG_OPTOUT)
        digest = _hash_label(owner, okey)
        if digest is None:
            rep.add("NSEC3_CHAIN_BROKEN", {"record": "NSEC3", "field": "owner", "found": text(owner),
                    "expected": "a hash label under the apex"}, text(owner), RdataType.NSEC3)
            continue
        wire = rr.wires[0]
        next_len = wire[pos]
        chain[digest] = (owner, wire[pos + 1 : pos + 1 + next_len], wire, pos + 1 + next_len)
        if rr.ttl != ttl:
            rep.add("NSEC_TTL_WRONG", {"record": "NSEC3", "ttl": rr.ttl, "expected": ttl}, text(owner),
                    RdataType.NSEC3)
    return chain, opt_out


def _nsec3_links(rep: VerifyReport, chain: _Chain, params: _Params, opt_out: bool, zshape: ZoneShape,
                 data: Data, text: Text) -> None:
    """Every name that needs an NSEC3 has one; each record links to the next hash, matches a
    name of the zone and lists that name's types."""
    _alg, iterations, salt = params
    parents: dict[Key, bytes] = {}
    allowed = {
        nsec3hash.nsec3_digest_wire(key_wire_via(n, parents), salt, iterations): n
        for n in nsec3_covered(zshape, data, False)
    }
    required = set(nsec3_covered(zshape, data, opt_out)) if opt_out else set(allowed.values())
    for digest, name in allowed.items():
        if digest not in chain and name in required:
            rep.add("NSEC3_MISSING", {"hash": nsec3hash.b32hex(digest)}, text(name))
    order = sorted(chain)
    for digest, name in allowed.items():  # RFC 5155 §7.1: skipped only by an opt-out record
        if digest in chain or name in required or not order:
            continue
        covering = chain[order[bisect.bisect_left(order, digest) - 1]]  # wraps past the last
        if not _nsec3_fields(covering[2])[1] & nsec3hash.NSEC3_FLAG_OPTOUT:
            rep.add("NSEC3_MISSING", {"hash": nsec3hash.b32hex(digest)}, text(name))
    for i, digest in enumerate(order):
        owner, next_hash, wire, bitmap_at = chain[digest]
        nxt = order[(i + 1) % len(order)]
        if next_hash != nxt:
            rep.add("NSEC3_CHAIN_BROKEN", {"record": "NSEC3", "field": "next hashed owner",
                    "found": nsec3hash.b32hex(next_hash), "expected": nsec3hash.b32hex(nxt)},
                    text(owner), RdataType.NSEC3)
        name = allowed.get(digest)
        if name is None:
            rep.add("NSEC3_CHAIN_BROKEN", {"record": "NSEC3", "field": "hash", "found": nsec3hash.b32hex(digest),
                    "expected": "the hash of a name of the zone"}, text(owner), RdataType.NSEC3)
            continue
        diff = _bitmap_check(wire, bitmap_at, nsec3_types(zshape.kinds[name], data.get(name, {}), nsec3param=True))
        if diff:
            rep.add("NSEC3_BITMAP_WRONG", {"name": text(name), **diff}, text(owner), RdataType.NSEC3)
