"""What an operator sees: a dnssec-signzone-like summary after signing, phases of progress on a
terminal only, and an --help that says what each option does, its default and units."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import click
import pytest

from sigchain.cli.main import COMMANDS, cli
from tests.conftest import EXAMPLE_ZONE, sc, sigchain_cmd
from tests.zonetools import keygen


def test_summary_counts_keys_by_role_and_state(keys: Path, tmp_path: Path) -> None:
    keygen(keys, "example.test", "zsk")  # a second ZSK: both sign
    out = tmp_path / "s"
    lines = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, "--nsec3", "--salt", "AB",
               check=True).stdout.splitlines()
    assert lines[0] == str(out)
    assert lines[1] == ("zone example.test. signed with NSEC3 (iterations 0, salt AB, "
                        "opt-out no)")
    assert lines[2] == ("algorithm ECDSAP256SHA256: KSKs: 1 active, 0 stand-by, 0 revoked; "
                        "ZSKs: 2 active, 0 stand-by, 0 revoked")
    made = sum(1 for line in out.read_text().splitlines() if line.split()[3:4] == ["RRSIG"])
    assert lines[3].startswith(f"signatures made: {made} in ") and "verified before writing" in lines[3]
    assert lines[4].startswith("re-sign by ") and " UTC (" in lines[4]


def _on_a_terminal(args: list[object]) -> tuple[str, str]:
    """Run sigchain with stderr on a pseudo-terminal; (stdout, what the terminal got)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([*sigchain_cmd(), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=slave, env={**os.environ, "COLUMNS": "120"})
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read() if proc.stdout else b""
    assert proc.wait() == 0
    os.close(master)
    return out.decode(), seen.decode(errors="replace")


def test_phases_shown_on_a_terminal_only(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    stdout, terminal = _on_a_terminal(["sign", EXAMPLE_ZONE, "--keys", keys, "-o", out])
    for phase in ("sign: read", "sign: prepare", "sign: sign", "sign: verify"):
        assert phase in terminal
    assert "sign:" not in stdout
    _, terminal = _on_a_terminal(["verify", out])
    assert "verify: read and check" in terminal  # one phase: the parts read and check at once
    piped = sc("sign", EXAMPLE_ZONE, "--keys", keys, "-o", out, check=True)
    assert piped.stderr == ""


@pytest.mark.parametrize("name", ["sign", "verify", "ds", "keygen"])
def test_every_option_says_what_it_does_and_its_default(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None and COMMANDS[name][2]
    for p in command.params:
        if not isinstance(p, click.Option) or p.name == "help":
            continue
        assert p.help and len(p.help) > 10, (name, p.name)
        if not p.is_flag and not p.required and p.default is not None:
            assert p.show_default or "default" in p.help.lower(), (name, p.name)
        elif not p.is_flag and not p.required:
            assert "default" in p.help.lower(), (name, p.name)


def test_durations_help_names_units() -> None:
    command = cli.get_command(click.Context(cli), "sign")
    assert command is not None
    helps = {p.name: p.help or "" for p in command.params}
    assert "1d12h" in helps["validity"] and "min(1d, validity/4)" in helps["jitter"]
    assert "RFC 9276" in helps["iterations"] and "now±DURATION" in helps["inception"]
