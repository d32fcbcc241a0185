"""Fixtures shared by the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.zonetools import keygen


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """A key directory with one KSK and one ZSK for example.test."""
    d = tmp_path / "keys"
    keygen(d, "example.test", "ksk")
    keygen(d, "example.test", "zsk")
    return d
