"""`sigchain serve --config`: the TOML schema, BIND key files, and errors naming file and line."""

from __future__ import annotations

import base64
import os
import re
import textwrap
from pathlib import Path

import dns.name
import dns.tsig
import pytest

from sigchain.errors import InputError
from sigchain.services import serveconfig
from sigchain.services.serveconfig import load_config, parse_config
from sigchain.services.tsigkeys import parse_bind_keys

N = dns.name.from_text
SECRET = base64.b64encode(b"s" * 32).decode()


def _docstring_example() -> str:
    """The example config in the module docstring (the README copies it): it must parse."""
    doc = serveconfig.__doc__ or ""
    block = doc.split("zone sets, TSIG keys, transfer ACLs and NOTIFY targets::\n", 1)[1]
    block = block.split("\nEach address answers", 1)[0]
    return textwrap.dedent(block)


def test_the_documented_example_parses(tmp_path: Path) -> None:
    (tmp_path / "tsig.key").write_text(f'key "bind-key" {{ algorithm hmac-sha256; secret "{SECRET}"; }};\n')
    text = _docstring_example().replace('"base64..."', f'"{SECRET}"')
    cfg = parse_config(text, str(tmp_path / "serve.toml"))
    assert set(cfg.keys) == {N("xfr-key."), N("bind-key.")}
    assert cfg.keys[N("xfr-key.")].algorithm == dns.tsig.HMAC_SHA256
    (zone,) = cfg.zones
    assert zone.name == N("example.test.") and zone.path == str(tmp_path / "example.test.signed")
    assert str(zone.allow_transfer) == "127.0.0.1/32, key:xfr-key"
    assert [str(t) for t in zone.also_notify] == ["127.0.0.1#5301", "127.0.0.2#5301 (TSIG xfr-key.)"]
    (listen,) = cfg.listens
    assert str(listen.address) == "127.0.0.1#5300" and listen.zones == (N("example.test."),)
    assert (cfg.udp_size, cfg.tcp_idle_timeout, cfg.ixfr_history) == (1232, 10.0, 20)


def test_per_address_zone_sets_and_defaults(tmp_path: Path) -> None:
    cfg = parse_config(textwrap.dedent("""
        [zones."a.test"]
        file = "/z/a"
        [zones."b.test."]
        file = "b"
        [[listen]]
        address = "127.0.0.1#5300"
        zones = ["a.test."]
        [[listen]]
        address = "127.0.0.2#5300"
        [[listen]]
        address = "::1#5300"
        zones = "b.test"
    """), str(tmp_path / "c.toml"))
    assert [lc.zones for lc in cfg.listens] == [
        (N("a.test."),), (N("a.test."), N("b.test.")), (N("b.test."),)]
    assert cfg.zones[1].path == str(tmp_path / "b")
    assert not cfg.zones[0].allow_transfer.entries and cfg.zones[0].also_notify == ()
    only = parse_config('[zones."a.test"]\nfile = "/z/a"\n', "x.toml")
    assert [str(lc.address) for lc in only.listens] == ["127.0.0.1#53"]


def test_bind_key_file_syntax(tmp_path: Path) -> None:
    text = textwrap.dedent(f"""\
        # written by tsig-keygen
        key "xfr-key" {{
            algorithm hmac-sha256;   // the usual one
            secret "{SECRET}";
        }};
        /* a second key,
           unquoted name */
        key other.key. {{ algorithm HMAC-SHA512; secret "{SECRET}"; }};
    """)
    keys = parse_bind_keys(text, "k.key")
    assert keys[N("xfr-key.")].secret == b"s" * 32
    assert keys[N("other.key.")].algorithm == dns.tsig.HMAC_SHA512


@pytest.mark.parametrize(("text", "line", "message"), [
    ('key "a" { algorithm hmac-sha256; secret "$S"; };\noptions { };\n', 2,
     "only key statements"),
    ('key "a" {\n algorithm hmac-sha256;\n secret "$S"\n};\n', 4, "expected ';'"),
    ('key "a" {\n algorithm hmac-sha256;\n};\n', 1, "has no secret"),
    ('key "a" {\n algorithm hmac-foo;\n secret "$S";\n};\n', 2, "unsupported algorithm"),
    ('key "a" {\n algorithm hmac-sha256;\n secret "not base64!";\n};\n', 3, "not valid base64"),
    ('key "a" { algorithm hmac-sha256; secret "$S"; };\nkey "a." { algorithm hmac-sha1; secret "$S"; };\n'
    , 2, "defined twice"),
    ('key "a" {\n algorithm hmac-sha256;\n', 2, "unexpected end of file"),
])
def test_bind_key_file_errors_name_the_line(text: str, line: int, message: str) -> None:
    text = text.replace("$S", SECRET)
    with pytest.raises(InputError) as exc:
        parse_bind_keys(text, "k.key")
    assert exc.value.file == "k.key" and exc.value.line == line
    assert message in exc.value.message
    assert SECRET not in str(exc.value)  # secrets never in messages


GOOD_ZONE = '[zones."example.test."]\nfile = "z"\n'


@pytest.mark.parametrize(("text", "line", "message"), [
    ('[zones."example.test."]\nfile = "z"\nallow-transfer = ["127.0.0.1",\n', 3, "bad TOML"),
    ('[zones."example.test."]\nfile = "z"\nallow-transfer == []\n', 3, "bad TOML"),
    (GOOD_ZONE + "allow-transfr = []\n", 3, "unknown setting 'allow-transfr'"),
    (GOOD_ZONE + 'allow-transfer = ["key:nokey"]\n', 3, "no TSIG key 'nokey' is defined"),
    (GOOD_ZONE + 'allow-transfer = ["10.0.0.300"]\n', 3, "bad ACL entry"),
    (GOOD_ZONE + 'also-notify = ["127.0.0.1#99999"]\n', 3, "bad port"),
    (GOOD_ZONE + 'also-notify = [{ address = "127.0.0.1", key = "k" }]\n', 3, "no TSIG key 'k'"),
    ('[zones.example.test]\nfile = "z"\n', None, "quote zone names"),
    ('[zones."example.test."]\nallow-transfer = []\n', 1, "file must be given"),
    (GOOD_ZONE + '[[listen]]\naddress = "127.0.0.1#5300"\nzones = ["other.test."]\n', 3,
     "zone 'other.test.' is not defined"),
    (GOOD_ZONE + '[[listen]]\naddress = "127.0.0.1#53"\n[[listen]]\naddress = "127.0.0.1"\n', 5,
     "already listed"),
    (GOOD_ZONE + '[[listen]]\naddress = "localhost"\n', 3, "expected an IP address"),
    ('[keys.k]\nalgorithm = "hmac-sha256"\nsecret = "!!"\n' + GOOD_ZONE, 3, "not valid base64"),
    ('[keys.k]\nalgorithm = "hmac-md4"\nsecret = "$S"\n' + GOOD_ZONE, 2, "unsupported algorithm"),
    ("[options]\nudp-size = 100\n" + GOOD_ZONE, 2, "udp-size"),
    ("[options]\nixfr-history = -1\n" + GOOD_ZONE, 2, "ixfr-history"),
    ("[options]\nudp-workers = 0\n" + GOOD_ZONE, 2, "udp-workers must be an integer in 1..64"),
    ('zones = 3\n', None, "must be a table"),
    ('tsig-keyfile = "missing.key"\n' + GOOD_ZONE, 1, "no such file"),
    ("", None, "no zone to serve"),
])
def test_config_errors_name_the_file_and_line(tmp_path: Path, text: str, line: int | None,
                                              message: str) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(text.replace("$S", SECRET))
    with pytest.raises(InputError) as exc:
        load_config(str(path))
    assert exc.value.file == str(path) and exc.value.exit_code == 2
    if line is not None:
        assert exc.value.line == line, str(exc.value)
    assert message in exc.value.message, exc.value.message


def test_tsig_keyfile_errors_point_into_the_key_file(tmp_path: Path) -> None:
    (tmp_path / "bad.key").write_text('key "a" {\n algorithm hmac-sha256;\n secret "x";\n};\n')
    path = tmp_path / "serve.toml"
    path.write_text('tsig-keyfile = ["bad.key"]\n' + GOOD_ZONE)
    with pytest.raises(InputError) as exc:
        load_config(str(path))
    assert re.fullmatch(r".*bad\.key:3: key 'a': the secret is not valid base64", str(exc.value))


def test_udp_workers_default_to_the_cpus_and_can_be_set(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(GOOD_ZONE)
    assert load_config(str(path)).udp_workers == len(os.sched_getaffinity(0))
    path.write_text("[options]\nudp-workers = 3\n" + GOOD_ZONE)
    assert load_config(str(path)).udp_workers == 3
