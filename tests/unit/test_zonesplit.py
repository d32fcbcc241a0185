"""A big zone file read in parts by the verify pool's workers (edge/zonesplit,
`Verifier.read`) gives exactly what one reader gives: the same RRsets in the same order, the
same warnings, the same error at the same line — or the file is read whole."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from sigchain.edge import zonefile, zonesplit
from sigchain.edge.signedparse import parse_part
from sigchain.errors import InputError
from sigchain.services import verifying

ORIGIN = dns.name.from_text("example.test.")
RRSIG = ("RRSIG A 13 3 300 20261219022020 20261205070802 38278 example.test. "
         "BDR+aHLkzTpzB/Ddl6cfOZOTm1a5ZkIZlddWo02uyqYrLmK1HOyaFoYbmPjYNoSWi+eK2Z2q93UkBIUzdCSjTw==")


def _zone(names: int, *, ttl_directive: bool = True, tail: str = "") -> str:
    """A zone in most of the master-file forms: $TTL, $ORIGIN changes, relative and absolute
    owners, records continuing the last owner, parentheses, comments, out-of-zone data, an
    RRset's records with different TTLs, a non-ASCII name."""
    out = ["; a test zone", "$ORIGIN example.test."]
    if ttl_directive:
        out.append("$TTL 300")
    out += ["@ 300 IN SOA ns hostmaster ( 1 7200 3600", "  1209600 300 ) ; the SOA",
            "@ 300 NS ns", "ns 300 A 192.0.2.1"]
    for i in range(names):
        if i % 97 == 50:
            out.append(f"$ORIGIN sub{i}.example.test.")
        if i % 97 == 60:
            out.append("$ORIGIN example.test.")
        owner = f"h{i}" if i % 3 else f"h{i}.example.test."
        out.append(f"{owner} 300 IN A 10.0.{i >> 8 & 255}.{i & 255}")
        out.append(f"  300 AAAA 2001:db8::{i:x} ; the same owner")
        if i % 7 == 0:
            out.append(f"{owner} 300 {RRSIG}")
        if i % 11 == 0:
            out.append(f'{owner} 300 TXT ( "part one"\n   "part two" )')
        if i % 301 == 0:
            out.append(f"outside{i}.example.org. 300 A 192.0.2.9")
        if i % 401 == 0:
            out.append(f"{owner} 600 A 10.9.{i >> 8 & 255}.{i & 255}")
        if i % 503 == 0:
            out.append(f"b\u00fccher{i} 300 A 10.8.{i >> 8 & 255}.{i & 255}")
    return "\n".join(out) + "\n" + tail


def _whole(path: Path) -> zonefile.WireZone:
    return zonefile.load_wire(str(path), "example.test.")


def _by_parts(path: Path, parts: int) -> tuple[list, tuple[list[str], list[str]]]:
    cuts = zonesplit.plan(str(path), ORIGIN, parts)
    assert cuts is not None and len(cuts) == parts
    read = [zonesplit.read_part(str(path), "example.test.", c, True) for c in cuts]
    assert all(p is not None for p in read)
    return ([r for p in read for r in p.rrsets],  # type: ignore[union-attr]
            ([i for p in read for i in p.ignored], [m for p in read for m in p.mixed]))  # type: ignore[union-attr]


@pytest.mark.parametrize("parts", [2, 3, 5])
def test_parts_read_as_the_whole_file(tmp_path: Path, parts: int) -> None:
    path = tmp_path / "zone"
    path.write_text(_zone(3000))
    rrsets, (ignored, mixed) = _by_parts(path, parts)
    whole = _whole(path)
    assert rrsets == whole.rrsets and len(rrsets) > 6000
    one = parse_part(path.read_text(), str(path), ORIGIN)
    assert ignored == one.ignored and ignored and mixed == one.mixed and mixed


def _read(path: Path, monkeypatch: pytest.MonkeyPatch) -> zonefile.WireZone:
    monkeypatch.setattr(verifying, "PARALLEL_READ", 0)
    with verifying.Verifier(threads=2) as v:
        return v.read_and_verify(str(path), "example.test.", 0, only_signed=True)[0]


def test_processes_read_a_big_file_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "zone"
    path.write_text(_zone(3000))
    got, want = _read(path, monkeypatch), _whole(path)
    assert got.rrsets == want.rrsets and got.warnings == want.warnings and len(got.warnings) == 2


@pytest.mark.parametrize("case", ["error", "owner in two parts", "no $TTL", "no SOA"])
def test_a_file_parts_cannot_read_alone_is_read_whole(tmp_path: Path, case: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "zone"
    if case == "error":
        text = _zone(3000, tail="late 300 A 300.1.2.3\n")
    elif case == "owner in two parts":
        text = _zone(3000, tail="@ 300 MX 10 ns\nh11.example.test. 300 A 10.9.9.9\n")
    elif case == "no $TTL":
        text = _zone(3000, ttl_directive=False, tail="late A 192.0.2.7\n")
    else:
        text = _zone(3000).replace("@ 300 IN SOA", "soa 300 IN SOA")
    path.write_text(text)
    try:
        want = _whole(path)
    except InputError as exc:
        with pytest.raises(InputError) as got:
            _read(path, monkeypatch)
        assert str(got.value) == str(exc) and got.value.line == exc.line
        return
    got_zone = _read(path, monkeypatch)
    assert got_zone.rrsets == want.rrsets and got_zone.warnings == want.warnings


def test_one_process_reading_the_parts_warns_as_the_whole_file(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A reload's reading (one process, the parts one after another) gives the same warnings."""
    path = tmp_path / "zone"
    path.write_text(_zone(3000))
    monkeypatch.setattr(verifying, "PARALLEL_READ", 0)
    monkeypatch.setattr(verifying, "ALONE_PART", 8 << 10)
    served: list[object] = []
    with verifying.Verifier(1) as v:
        zone, _ = v.read_and_verify(str(path), "example.test.", 0, only_signed=True, served=True,
                                    sink=served.extend, alone=0)
    assert served  # read in parts: the whole-file reader hands nothing to the sink
    assert zone.warnings == _whole(path).warnings and len(zone.warnings) == 2
