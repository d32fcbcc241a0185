"""Ctrl-C during signing: one line, exit 130, no traceback from the process or its workers,
and no temp file left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, sigchain_cmd


def test_ctrl_c_while_signing(keys: Path, tmp_path: Path) -> None:
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
    time.sleep(0.3)  # the workers are signing
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip() == "sigchain: interrupted" and stdout == ""  # (click ends the ^C line)
    assert list(out.parent.iterdir()) == []
