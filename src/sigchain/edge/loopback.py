"""Addresses on the loopback interface (`ip addr` on `lo`) and whether a port is free."""

from __future__ import annotations

import errno
import ipaddress
import socket

from sigchain.edge.processes import find_binary, run_tool
from sigchain.errors import OperationalError

DEVICE = "lo"


def _ip() -> str:
    ip = find_binary("ip")
    if ip is None:
        raise OperationalError("the 'ip' command is missing (Debian package iproute2)")
    return ip


def addresses() -> set[str]:
    """IPv4 addresses configured on lo (as configured: 127.0.0.1/8 gives 127.0.0.1 only)."""
    proc = run_tool([_ip(), "-o", "-4", "addr", "show", "dev", DEVICE])
    if proc.returncode != 0:
        raise OperationalError(f"ip addr show dev {DEVICE} failed: {proc.stderr.strip()}")
    out = set()
    for line in proc.stdout.splitlines():
        tokens = line.split()
        if "inet" in tokens:
            out.add(tokens[tokens.index("inet") + 1].split("/")[0])
    return out


def _check_loopback(address: str) -> None:
    if not ipaddress.ip_address(address).is_loopback:
        raise OperationalError(f"refusing to configure {address} on {DEVICE}: not a loopback address")


def add(address: str) -> None:
    _check_loopback(address)
    proc = run_tool([_ip(), "addr", "add", f"{address}/32", "dev", DEVICE])
    if proc.returncode != 0:
        raise OperationalError(f"cannot add {address}/32 to {DEVICE}: {proc.stderr.strip()}")


def remove(address: str) -> None:
    _check_loopback(address)
    proc = run_tool([_ip(), "addr", "del", f"{address}/32", "dev", DEVICE])
    if proc.returncode != 0 and "Cannot assign" not in proc.stderr:
        raise OperationalError(f"cannot remove {address}/32 from {DEVICE}: {proc.stderr.strip()}")


def port_problem(address: str, port: int) -> str | None:
    """Why `address#port` cannot be bound for UDP and TCP now, or None if it can.
    An address not configured yet counts as free: the lab adds it before binding."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
        except OSError as exc:
            proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
            if exc.errno == errno.EADDRINUSE:
                return f"{proto} port {port} on {address} is already in use (another DNS server?)"
            if exc.errno in (errno.EACCES, errno.EPERM):
                return f"no permission to bind {proto} port {port} on {address} (needs root)"
            if exc.errno == errno.EADDRNOTAVAIL:
                continue
            return f"cannot bind {proto} port {port} on {address}: {exc.strerror}"
        finally:
            s.close()
    return None
