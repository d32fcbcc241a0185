"""The lab the diagnose, drill, check and resolver tests share the shape of: one per module,
with Unbound, always taken down."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need, sc


def unbound_lab(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("the lab tests run as root (port 53, addresses on lo): run bash dev/test as root")
    for tool in ("unbound", "unbound-control", "dig"):
        need(tool)
    d = tmp_path_factory.mktemp(name)
    proc = sc("lab", "up", "--dir", d, "--resolver", "unbound")
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield d
    finally:
        sc("lab", "down", "--dir", d)
