"""Trust anchors and root hints as users write them (core/validate/anchors.py): zone-file DS/DNSKEY
records with any owner, BIND trust-anchors / managed-keys / trusted-keys, root hints; and the
built-in IANA anchors and root servers."""

from __future__ import annotations

import dns.dnssec
import dns.name
import dns.rdatatype
import pytest

from sigchain.core.validate import anchors
from sigchain.core.validate.anchors import Server
from sigchain.errors import InputError

KSK2017 = "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
KSK2024 = "683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16"
KEY = "utv+lvxmhM9m9ROcVe0eEuc2gORPuJ7b19Q0BkCe0T0ZXrCEHvtiA6pnsjWiC3G+yO4DMNqKXPxox9x0rfQBtw=="


def test_builtin_root_anchors_are_the_iana_ksks_as_ds() -> None:
    [rrset] = anchors.iana_root_anchors()
    assert rrset.name == dns.name.root and rrset.rdtype == dns.rdatatype.DS
    got = {(rd.key_tag, rd.algorithm, rd.digest_type, rd.digest.hex().upper()) for rd in rrset}  # type: ignore[attr-defined]
    assert got == {(20326, 8, 2, KSK2017), (38696, 8, 2, KSK2024)}


def test_builtin_root_servers_ipv4_first() -> None:
    servers = anchors.root_hint_servers()
    assert len(servers) == 26 and servers[0] == Server("198.41.0.4")
    assert all(not s.ipv6 for s in servers[:13]) and all(s.ipv6 for s in servers[13:])


def test_zone_file_ds_and_dnskey_with_any_owner_and_directives() -> None:
    text = f"""; a zone's own KSK as its anchor, as in a K-file
$ORIGIN example.
$TTL 60
@ 3600 IN DNSKEY ( 257 3 13
        {KEY[:40]}
        {KEY[40:]} ) ; KSK
   IN DS 1 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE0E0F0B2BD10F8C3D2EE0B6E1
sub DS 2 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE0E0F0B2BD10F8C3D2EE0B6E1
"""
    got = {(r.name.to_text(), dns.rdatatype.to_text(r.rdtype), len(r)) for r in anchors.parse_anchors(text)}
    assert got == {("example.", "DNSKEY", 1), ("example.", "DS", 1), ("sub.example.", "DS", 1)}


def test_bind_trust_anchors_syntax() -> None:
    text = f"""# comments of all three kinds
trust-anchors {{
    /* the root, by digest */
    "." static-ds 20326 8 2 "{KSK2017[:30]}
                             {KSK2017[30:]}";
    . initial-ds 38696 8 2 "{KSK2024}";   // RFC 5011 managed: used as a static anchor here
    example. static-key 257 3 13 "{KEY}";
    example. initial-key 257 3 13 "{KEY}";
}};
managed-keys {{ other. initial-key 257 3 13 "{KEY}"; }};
trusted-keys {{ third. 257 3 13 "{KEY}"; }};
"""
    rrsets = {(r.name.to_text(), dns.rdatatype.to_text(r.rdtype)): r for r in anchors.parse_anchors(text)}
    assert set(rrsets) == {(".", "DS"), ("example.", "DNSKEY"), ("other.", "DNSKEY"), ("third.", "DNSKEY")}
    assert {rd.key_tag for rd in rrsets[(".", "DS")]} == {20326, 38696}  # type: ignore[attr-defined]
    assert len(rrsets[("example.", "DNSKEY")]) == 1  # the same key twice is one anchor
    assert dns.dnssec.key_id(rrsets[("third.", "DNSKEY")][0]) == dns.dnssec.key_id(rrsets[("example.", "DNSKEY")][0])  # type: ignore[arg-type]


@pytest.mark.parametrize("text, where, why", [
    ("; c\n. IN DS 1 8 2 AAAA\n", "f:2:", "digest length"),
    (f". DS 20326 8 2 {KSK2017}\n\nexample. IN A 192.0.2.1\n", "f:3:", "example. A: not a DS or DNSKEY"),
    ("garbage here\n", "f:1:", "unknown rdatatype"),
    ("$INCLUDE other\n", "f:1:", "unsupported directive"),
    ("", "f:", "no DS or DNSKEY trust anchor"),
    ('trust-anchors {\n  . static-ds 1 8 2;\n};\n', "f:2:", "needs 4 fields"),
    ('trust-anchors {\n  . other-key 1 8 2 "AA";\n};\n', "f:2:", "unknown anchor type"),
    ('trust-anchors {\n  . static-ds 1 8 2 "AA"\n', "f:2:", "not ended by ';'"),
    ("trust-anchors . static-ds;", "f:1:", "trust-anchors clause"),
    (f'trust-anchors {{ . static-ds 1 8 2 "{KSK2017}"; }};\n}}', "f:2:", "unexpected '}'"),
])
def test_bad_anchor_files_name_the_line(text: str, where: str, why: str) -> None:
    with pytest.raises(InputError) as err:
        anchors.parse_anchors(text, "f")
    assert str(err.value).startswith(where) and why in str(err.value), str(err.value)


def test_root_hints_take_the_roots_name_server_addresses() -> None:
    text = """.                        3600000      NS    A.ROOT-SERVERS.NET.
A.ROOT-SERVERS.NET.      3600000      A     198.41.0.4
A.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:ba3e::2:30
unrelated.               3600000      A     192.0.2.1
"""
    assert anchors.parse_root_hints(text) == (Server("198.41.0.4"), Server("2001:503:ba3e::2:30"))
    assert anchors.parse_root_hints("ns.test. A 127.54.0.1\n") == (Server("127.54.0.1"),)
    with pytest.raises(InputError, match="no root server addresses"):
        anchors.parse_root_hints(". NS a.example.\n")
    with pytest.raises(InputError, match="h:1: not a root hint"):
        anchors.parse_root_hints(". DS 1 8 2 00\n", "h")


@pytest.mark.parametrize("text, port, server", [
    ("127.54.0.9", None, Server("127.54.0.9")),
    ("127.54.0.9#5353", None, Server("127.54.0.9", 5353)),
    ("127.54.0.9", 5353, Server("127.54.0.9", 5353)),
    ("::1#53", None, Server("::1")),
])
def test_parse_server(text: str, port: int | None, server: Server) -> None:
    assert anchors.parse_server(text, port) == server


@pytest.mark.parametrize("text, port", [("ns.example", None), ("127.0.0.1#0", None),
                                        ("127.0.0.1#53", 54), ("127.0.0.1", 70000)])
def test_parse_server_refuses(text: str, port: int | None) -> None:
    with pytest.raises(InputError):
        anchors.parse_server(text, port)


def test_server_text_is_bind_style() -> None:
    assert str(Server("127.0.0.1")) == "127.0.0.1" and str(Server("127.0.0.1", 5353)) == "127.0.0.1#5353"
