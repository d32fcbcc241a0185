"""The guard itself: a test that tries to leave loopback must fail."""

import socket

import pytest

from tests.conftest import NonLoopbackTraffic


def test_non_loopback_udp_is_refused() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(NonLoopbackTraffic):
            s.sendto(b"\x00" * 12, ("192.0.2.1", 53))
        with pytest.raises(NonLoopbackTraffic):
            s.connect(("198.41.0.4", 53))  # a.root-servers.net
    finally:
        s.close()


def test_non_loopback_tcp_is_refused() -> None:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        with pytest.raises(NonLoopbackTraffic):
            s.connect_ex(("2001:503:ba3e::2:30", 53, 0, 0))
    finally:
        s.close()


def test_loopback_is_allowed() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"x", ("127.0.0.1", 9))  # discard port; nothing needs to listen
    finally:
        s.close()
