"""Hostile and careless zone files: one `file:line: what is wrong` line and exit 2 from `sign`
and `verify` (both readers: the fast one, and dnspython's for $INCLUDE/$GENERATE), bounded
work and memory, short quotes of bad lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need, sc
from tests.zonetools import keygen

HEAD = "$ORIGIN example.test.\n$TTL 3600\n@ SOA ns1 host 1 3600 900 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n"
GEN = "$GENERATE 1-3 g$ A 192.0.2.$\n"  # sends the file through dnspython's reader
BIG_TXT = "big TXT " + " ".join(['"' + "x" * 250 + '"'] * 270) + "\n"  # 67,770 bytes of rdata


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile") / "keys"
    keygen(d, "example.test", "ksk")
    return d


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text.replace("DIR", str(tmp_path)))
    return tmp_path / "z.zone"


CASES = {  # name: (files, file:line the error names, a fragment of the message)
    "txt_over_65535_fast": ({"z.zone": HEAD + BIG_TXT}, "z.zone:6", "67770 bytes"),
    "txt_over_65535_full": ({"z.zone": HEAD + GEN + BIG_TXT}, "z.zone:7", "67770 bytes"),
    "missing_include": ({"z.zone": HEAD + "$INCLUDE DIR/nothere.zone\n"}, "z.zone:6",
                        "cannot read $INCLUDE file"),
    "includes_itself": ({"z.zone": HEAD + "$INCLUDE DIR/z.zone\n"}, "z.zone:6", "$INCLUDE loop"),
    "include_loop": ({"z.zone": HEAD + "$INCLUDE DIR/a.zone\n", "a.zone": "$INCLUDE DIR/b.zone\n",
                      "b.zone": "$INCLUDE DIR/a.zone\n"}, "a.zone:1",
                     "$INCLUDE loop: a.zone includes b.zone includes a.zone"),
    "include_depth_11": ({"z.zone": HEAD + "$INCLUDE DIR/d1.zone\n"}
                         | {f"d{i}.zone": f"$INCLUDE DIR/d{i + 1}.zone\n" for i in range(1, 12)}
                         | {"d12.zone": "deep A 192.0.2.7\n"}, "d10.zone:1", "more than 10 deep"),
    "generate_ten_million": ({"z.zone": HEAD + "$GENERATE 1-10000000 h$ A 192.0.2.1\n"}, "z.zone:6",
                             "at most 65536"),
    "generate_backwards": ({"z.zone": HEAD + "$GENERATE 5-1 h$ A 192.0.2.1\n"}, "z.zone:6",
                           "invalid range"),
    "generate_past_2_31": ({"z.zone": HEAD + "$GENERATE 2147483648-2147483648 h$ A 192.0.2.1\n"},
                           "z.zone:6", "invalid range"),
    "long_line_fast": ({"z.zone": HEAD + "bad A " + "1" * 100_000 + "\n"}, "z.zone:6", "'bad A 111"),
    "line_over_1mib_fast": ({"z.zone": HEAD + "x TXT " + "a" * (1 << 20) + "\n"}, "z.zone:6",
                            "line longer than 1048576 characters"),
    "line_over_1mib_full": ({"z.zone": HEAD + GEN + ";" + "c" * (4 << 20) + "\nx TXT " + "a" * (1 << 20) + "\n"},
                            "z.zone:8", "line longer than 1048576 characters"),
    "long_token_full": ({"z.zone": HEAD + GEN + "bad " + "B" * 100_000 + " 1\n"}, "z.zone:7", "'bad BBB"),
}


@pytest.mark.parametrize("command", ["sign", "verify"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_is_one_line_and_exit_2(tmp_path: Path, keys: Path, case: str, command: str) -> None:
    files, where, fragment = CASES[case]
    zone = _write(tmp_path, files)
    args = ["--keys", keys, "-o", tmp_path / "out"] if command == "sign" else []
    r = sc(command, zone, *args, cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    print(case, command, r.returncode, f"{len(r.stderr)} bytes of stderr:", lines[:1])
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith(f"sigchain: error: {tmp_path}/{where}: ")
    assert fragment in lines[0] and len(lines[0]) < 400  # a short quote, never the whole line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["generate_backwards", "generate_past_2_31"])
def test_bind_refuses_the_same_generate_ranges(tmp_path: Path, case: str) -> None:
    zone = _write(tmp_path, CASES[case][0])
    r = subprocess.run([need("named-checkzone"), "example.test", str(zone)], capture_output=True, text=True)
    assert r.returncode != 0 and "invalid range" in r.stdout + r.stderr


def test_generate_within_bounds_still_works(tmp_path: Path, keys: Path) -> None:
    # the most one $GENERATE may make (65,536 records), as glue below a delegation: read,
    # signed and written whole, with a few signatures rather than 131,072 (~40 s of the suite)
    zone = _write(tmp_path, {"z.zone": HEAD + "sub NS ns.sub\n$GENERATE 0-65535/1 h$.sub A 192.0.2.1\n"})
    r = sc("sign", zone, "--keys", keys, "-o", tmp_path / "out", "--threads", "1")
    assert r.returncode == 0, r.stderr
    out = (tmp_path / "out").read_text()
    assert out.count(".sub.example.test. 3600 IN A 192.0.2.1\n") == 65536
    assert "\nh0.sub.example.test. " in out and "\nh65535.sub.example.test. " in out


# Runs the CLI and, as it exits, writes its peak resident memory (VmHWM: this process image's
# own, unlike ru_maxrss, which a child inherits from the process that forked it).
_MEASURED = """
import atexit, runpy, sys
out = sys.argv.pop(1)
def hwm():
    status = open("/proc/self/status").read()
    open(out, "w").write(status.split("VmHWM:")[1].split()[0])
atexit.register(hwm)
sys.argv[0] = "sigchain"
runpy.run_module("sigchain", run_name="__main__")
"""


def _peak_rss_kb(args: list[object], cwd: Path) -> tuple[int, str]:
    """Run the CLI; (its peak resident memory in KiB, stderr)."""
    out = cwd / "hwm"
    r = subprocess.run([sys.executable, "-c", _MEASURED, str(out), *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, timeout=600)
    return int(out.read_text()), r.stderr


@pytest.mark.parametrize("command", ["sign", "verify"])
def test_comment_only_file_is_streamed(tmp_path: Path, keys: Path, command: str) -> None:
    """A 96 MB comment-only file (and one 4 MB comment line) is read in bounded memory: the
    peak is within 40 MB of reading a tiny file, where reading it whole costs 100+ MB."""
    small, big = tmp_path / "small.zone", tmp_path / "big.zone"
    small.write_text("; nothing\n")
    with big.open("w") as f:
        f.write(";" + "c" * (4 << 20) + "\n")
        line = "; " + "comment " * 12 + "\n"
        f.write(line * ((92 << 20) // len(line)))
    extra = ["--keys", keys, "-o", tmp_path / "out"] if command == "sign" else []
    base, _ = _peak_rss_kb([command, small, *extra, "--origin", "example.test"], tmp_path)
    peak, err = _peak_rss_kb([command, big, *extra, "--origin", "example.test"], tmp_path)
    print(f"{command}: peak RSS {base} KiB for a 10-byte file, {peak} KiB for a {big.stat().st_size} byte one")
    assert "no SOA record" in err and "Traceback" not in err
    assert peak - base < 40 * 1024
