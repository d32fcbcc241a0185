"""Ctrl-C during signing: one line, exit 130, no traceback from the process or its workers,
and no temp file left behind. SIGTERM (to the main process only, as a service manager or
`timeout` sends it) stops it the same way, with exit 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, sigchain_cmd


def _size(out: Path) -> int:
    total = 0
    for p in out.parent.glob(".sigchain-*"):
        try:
            total += p.stat().st_size
        except FileNotFoundError:  # renamed into place meanwhile
            pass
    return total


def _written(out: Path) -> bool:
    """Whether the signed temp file has stopped growing (the zone is being verified before
    it is renamed into place)."""
    sizes = []
    for _ in range(4):
        sizes.append(_size(out))
        time.sleep(0.05)
    return sizes[0] > 0 and len(set(sizes)) == 1


# signing: 0.3 s after the temp file appears; verifying: once it stopped growing (the part
# processes then printed a BrokenPipeError traceback each once the parent had gone)
@pytest.mark.parametrize(("phase", "stop"), [("signing", "ctrl-c"), ("verifying", "ctrl-c"),
                                             ("signing", "sigterm"), ("verifying", "sigterm")])
def test_ctrl_c_while_signing(keys: Path, tmp_path: Path, phase: str, stop: str) -> None:
    zone = tmp_path / "big.zone"
    with zone.open("w") as f:
        subprocess.run([sys.executable, ROOT / "bench" / "genzone.py", "--origin", "example.test.",
                        "30000"], stdout=f, check=True)
    out = tmp_path / "out" / "big.signed"
    out.parent.mkdir()
    proc = subprocess.Popen([*sigchain_cmd(), "sign", zone, "--keys", keys, "-o", out],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own group: Ctrl-C reaches all of it
    deadline = time.monotonic() + 60
    while not list(out.parent.glob(".sigchain-*")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    if phase == "signing":
        time.sleep(0.3)
    while phase == "verifying" and not _written(out) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
    if proc.poll() == 0:
        pytest.skip("signed and verified before the interrupt came (a machine this fast "
                    "needs a bigger zone)")
    if stop == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    finally:  # (a hang: nothing left behind for the tests after this one)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == (130 if stop == "ctrl-c" else 143), stderr
    said = "sigchain: interrupted" if stop == "ctrl-c" else "sigchain: terminated"
    assert stderr.strip() == said and stdout == ""  # (click ends the ^C line)
    assert list(out.parent.iterdir()) == []
