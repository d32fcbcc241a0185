"""CNAME/DNAME chain following (core/zone/chain), shared by the resolver and the validator."""

from __future__ import annotations

import dns.name
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.zone.chain import follow, needs_signature

N = dns.name.from_text


def rr(owner: str, rdtype: str, *data: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, 300, "IN", rdtype, *data)


def walk(items: list[dns.rrset.RRset], name: str, rdtype: int = RdataType.A, **kw: bool):  # type: ignore[no-untyped-def]
    return follow(items, N(name), rdtype, lambda r: r[0].target, **kw)


def test_cname_then_dname_then_data() -> None:
    items = [rr("www.a.test.", "CNAME", "x.old.test."), rr("old.test.", "DNAME", "new.test."),
             rr("x.old.test.", "CNAME", "x.new.test."), rr("x.new.test.", "A", "192.0.2.1")]
    chain = walk(items, "www.a.test.")
    assert chain.stop == "answer" and chain.end == N("x.new.test.") and chain.final is items[3]
    assert [(s.kind, s.item.name.to_text()) for s in chain.steps] == [
        ("cname", "www.a.test."), ("dname", "old.test.")]
    assert chain.steps[1].synthesized is items[2]


def test_the_deepest_dname_wins_and_the_dname_owner_itself_is_not_rewritten() -> None:
    items = [rr("test.", "DNAME", "wrong."), rr("b.test.", "DNAME", "right.")]
    assert walk(items, "x.b.test.").end == N("x.right.")
    assert walk(items, "b.test.").end == N("b.wrong.")  # only test.'s DNAME applies


def test_open_end_loop_and_overlong_names() -> None:
    assert walk([rr("a.test.", "CNAME", "b.test.")], "a.test.").stop == "open"
    loop = walk([rr("a.test.", "CNAME", "b.test."), rr("b.test.", "CNAME", "a.test.")], "a.test.")
    assert loop.stop == "loop" and len(loop.steps) == 2
    long_target = ".".join(["x" * 60] * 4) + "."
    chain = walk([rr("d.test.", "DNAME", long_target)], ("y" * 60) + ".d.test.")
    assert chain.stop == "too-long" and chain.end == N(("y" * 60) + ".d.test.")


def test_a_cname_question_stops_at_the_cname_and_any_is_optional() -> None:
    items = [rr("a.test.", "CNAME", "b.test."), rr("b.test.", "A", "192.0.2.1")]
    assert walk(items, "a.test.", RdataType.CNAME).final is items[0]
    validator_view = walk(items, "a.test.", RdataType.ANY)
    assert validator_view.stop == "open" and validator_view.end == N("b.test.")
    resolver_view = walk(items, "a.test.", RdataType.ANY, any_type_ends=True)
    assert resolver_view.stop == "answer" and resolver_view.final is items[0]


def test_a_cname_asked_below_a_dname_is_the_synthesised_one() -> None:
    items = [rr("old.test.", "DNAME", "new.test."), rr("x.old.test.", "CNAME", "x.new.test."),
             rr("x.new.test.", "CNAME", "y.new.test.")]
    for rdtype in (RdataType.CNAME, RdataType.ANY):
        chain = walk(items, "x.old.test.", rdtype, any_type_ends=True)
        assert chain.stop == "answer" and chain.final is items[1] and chain.end == N("x.old.test.")
        assert [(s.kind, s.item, s.synthesized) for s in chain.steps] == [("dname", items[0], items[1])]
        assert needs_signature(chain, [items[1], items[2]]) == [items[2]]
    plain = walk(items[1:], "x.old.test.", RdataType.CNAME)  # no DNAME given: a CNAME as any
    assert plain.steps == () and needs_signature(plain, [items[1]]) == [items[1]]
