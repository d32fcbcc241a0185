"""core/sign/denial: the chain a re-signed zone gets is the input's unless the request says
otherwise, and a change is a SIGN_DENIAL_CHANGED warning."""

from __future__ import annotations

import dns.name
import pytest

from sigchain.core.sign.denial import Denial, DenialRequest, choose, found_denial
from sigchain.core.zone.nsec3hash import Nsec3Params
from sigchain.core.zone.records import RRsetRec, key_of
from sigchain.errors import InputError

ORIGIN = dns.name.from_text("example.")
OKEY = key_of(ORIGIN)


def rec(owner: str, rdtype: int, text: str) -> RRsetRec:
    name = dns.name.from_text(owner)
    return RRsetRec(key_of(name), name.to_text(), rdtype, 300, (b"",), (text,))


NSEC3_ZONE = [
    rec("example.", 51, "1 0 5 BEEF"),
    rec("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.", 50, "1 1 5 BEEF 2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3S A RRSIG"),
]
NSEC_ZONE = [rec("example.", 47, "example. NS SOA RRSIG NSEC DNSKEY")]


def test_the_inputs_chain_is_found() -> None:
    assert found_denial(NSEC3_ZONE, OKEY) == Denial("nsec3", Nsec3Params(5, b"\xbe\xef", True))
    assert found_denial(NSEC_ZONE, OKEY) == Denial("nsec")
    assert found_denial([], OKEY) == Denial(None)


def test_nothing_asked_keeps_the_chain_without_warning() -> None:
    found = found_denial(NSEC3_ZONE, OKEY)
    assert choose(DenialRequest(), found) == (found, [])
    assert choose(DenialRequest("nsec3"), found) == (found, [])
    assert choose(DenialRequest(), Denial(None)) == (Denial("nsec"), [])  # unsigned: NSEC


def test_a_change_is_a_warning_naming_both() -> None:
    found = found_denial(NSEC3_ZONE, OKEY)
    chosen, warnings = choose(DenialRequest(iterations=0, opt_out=False), found)
    assert chosen == Denial("nsec3", Nsec3Params(0, b"\xbe\xef", False))
    assert [w.code for w in warnings] == ["SIGN_DENIAL_CHANGED"]
    assert warnings[0].params == {"found": "NSEC3 (iterations 5, salt BEEF, opt-out yes)",
                                  "signed": "NSEC3 (iterations 0, salt BEEF, opt-out no)"}
    chosen, warnings = choose(DenialRequest("nsec3"), Denial("nsec"))
    assert chosen == Denial("nsec3", Nsec3Params()) and warnings[0].params["found"] == "NSEC"
    chosen, warnings = choose(DenialRequest(), Denial(None))
    assert not warnings  # signing an unsigned zone changes no chain


def test_nsec3_fields_without_nsec3_are_refused() -> None:
    with pytest.raises(InputError, match="need NSEC3"):
        choose(DenialRequest(salt=b"\x01"), Denial("nsec"))
    with pytest.raises(InputError, match="need NSEC3"):
        choose(DenialRequest("nsec", iterations=1), found_denial(NSEC3_ZONE, OKEY))
