"""SharedName: dnspython's Name semantics (case-insensitive equality, hashing, subdomains)
with its lower-cased labels and hash kept."""

from __future__ import annotations

import copy
import pickle

import dns.name
import pytest

from sigchain.core.zone.sharedname import SharedName, lower_labels, share, shared


def N(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def test_equality_and_hash_are_case_insensitive_and_mix_with_plain_names() -> None:
    a, b = share(N("WWW.Example.TEST.")), share(N("www.example.test."))
    assert isinstance(a, SharedName) and isinstance(b, SharedName) and a is not b
    assert a == b and not a != b and hash(a) == hash(b)
    plain = N("www.EXAMPLE.test.")
    assert a == plain and plain == a and hash(a) == hash(plain)
    assert {plain: 1}[a] == 1 and {a: 2}[plain] == 2
    assert a != share(N("www.example.test.org.")) and a != N("ww.example.test.")
    assert a != share(N("www.example.")) and a != "www.example.test."
    assert a.to_text() == "WWW.Example.TEST." and a.key == (b"www", b"example", b"test", b"")


def test_subdomains_follow_dnspython_including_case_and_label_boundaries() -> None:
    names = ["example.test.", "EXAMPLE.test.", "www.example.test.", "wexample.test.", ".",
             "test.", "a.b.example.test.", "xample.test."]
    for x in names:
        for y in names:
            sx, sy, px, py = share(N(x)), share(N(y)), N(x), N(y)
            assert sx.is_subdomain(sy) is px.is_subdomain(py), (x, y)
            assert sx.is_superdomain(sy) is px.is_superdomain(py), (x, y)
            assert sx.is_subdomain(py) is px.is_subdomain(py)
            assert (sx == sy) is (px == py) and (sx != py) is (px != py)
    assert share(N("a.")).is_subdomain(share(N("A.")))


def test_parent_is_shared_and_root_has_none() -> None:
    name = share(N("a.B.c."))
    assert isinstance(name.parent(), SharedName) and name.parent() == N("b.c.")
    assert name.parent().parent().parent() == dns.name.root
    with pytest.raises(dns.name.NoParent):
        share(dns.name.root).parent()


def test_shared_keeps_one_object_per_spelling_and_leaves_relative_names_plain() -> None:
    assert shared((b"x", b"")) is shared((b"x", b""))
    relative = shared((b"x",))
    assert not isinstance(relative, SharedName) and relative == dns.name.Name([b"x"])
    with pytest.raises(dns.name.LabelTooLong):
        shared((b"a" * 64, b""))
    with pytest.raises(ValueError):
        SharedName((b"x",))
    assert lower_labels(N("A.b.")) == lower_labels(share(N("A.b."))) == (b"a", b"b", b"")


def test_pickle_and_copy_keep_the_name() -> None:
    name = share(N("Mixed.Case."))
    again = pickle.loads(pickle.dumps(name))
    assert isinstance(again, SharedName) and again == name and again.to_text() == "Mixed.Case."
    assert copy.copy(name) == name and copy.deepcopy(name) == name


def test_text_is_dnspythons_and_kept() -> None:
    name = share(N("Www.Example.Test."))
    assert str(name) == name.to_text() == "Www.Example.Test." and name.to_text() is name.to_text()
    assert name.to_text(omit_final_dot=True) == "Www.Example.Test"
    assert share(N("a\\.b.\\032c.")).to_text() == N("a\\.b.\\032c.").to_text()
    assert repr(name) == "<DNS name Www.Example.Test.>" and str(share(dns.name.root)) == "."
