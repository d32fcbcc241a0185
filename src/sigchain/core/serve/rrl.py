"""Response-rate limiting over UDP, as BIND's RRL: per client network (/24, /56) and response
(name and type; NXDOMAIN and errors per zone), each response spends a credit that comes back
at `per_second`; over the limit, every `slip`-th response goes out truncated (TC=1, so a
real client retries over TCP) and the others are dropped. Time is a parameter (`now`)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from functools import lru_cache

SEND, SLIP, DROP = "send", "slip", "drop"
MAX_TABLE = 20_000  # buckets kept (BIND's max-table-size default)


@dataclass(frozen=True)
class RateLimit:
    """`per_second` 0 turns it off (the default: as BIND, only when configured)."""

    per_second: int = 0
    window: int = 15  # seconds of debt a client can run up (BIND's window)
    slip: int = 2  # every slip-th limited answer is sent truncated; 0: all dropped
    ipv4_prefix: int = 24
    ipv6_prefix: int = 56


@lru_cache(maxsize=4096)
def network(client: str, limit: RateLimit) -> str:
    """The client's network as the account's first part (a /24 or /56)."""
    try:
        addr = ipaddress.ip_address(client.split("%")[0])
    except ValueError:
        return client
    prefix = limit.ipv4_prefix if addr.version == 4 else limit.ipv6_prefix
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def response_key(wire: bytes) -> tuple[bytes, int, int] | None:
    """(lower-cased qname wire, qtype, rcode) of a response; None when unreadable. The caller
    counts NXDOMAIN and errors per zone instead (random names are one flood), as BIND."""
    if len(wire) < 17:
        return None
    rcode = wire[3] & 0x0F
    end = 12
    while end < len(wire) and wire[end]:
        if wire[end] > 63:
            return None
        end += wire[end] + 1
    if end + 3 > len(wire):
        return None
    return (wire[12:end + 1].lower(), (wire[end + 1] << 8) | wire[end + 2], rcode)


STATS = ("send", "limited", "slipped", "dropped")  # what `RrlStats` counts, in this order
_STAT_INDEX = {name: i for i, name in enumerate(STATS)}


class RrlStats:
    """A limiter's counts (answers sent, accounts limited, answers slipped and dropped) in a
    buffer of signed 64-bit integers, one per name in `STATS`: its own, or one that a server
    shares between processes, so that one total covers every process answering UDP."""

    __slots__ = ("_values",)

    def __init__(self, values: memoryview | None = None):
        self._values = memoryview(bytearray(8 * len(STATS))).cast("q") if values is None \
            else values

    def __getitem__(self, name: str) -> int:
        return self._values[_STAT_INDEX[name]]

    def __setitem__(self, name: str, value: int) -> None:
        self._values[_STAT_INDEX[name]] = value

    def as_dict(self) -> dict[str, int]:
        return {name: self._values[i] for i, name in enumerate(STATS)}


class RateLimiter:
    """The accounts (credit, last time) and the decision for each response."""

    def __init__(self, limit: RateLimit):
        self.limit = limit
        # → [credit, time, limited responses]
        self._accounts: dict[tuple[str, bytes, int, int], list[int]] = {}
        self.stats = RrlStats()  # a server's UDP worker gives it a shared buffer (services/ratelimit)

    def decide(self, client: str, key: tuple[bytes, int, int], now: int) -> str:
        """SEND, SLIP or DROP for one response (counted as `key`) to `client` at `now`."""
        limit = self.limit
        account_key = (network(client, limit), *key)
        account = self._accounts.get(account_key)
        if account is None:
            if len(self._accounts) >= MAX_TABLE:
                self._prune(now)
            account = self._accounts[account_key] = [limit.per_second, now, 0]
        credit, then, over = account
        credit = min(limit.per_second, credit + (now - then) * limit.per_second) - 1
        account[0], account[1] = max(credit, -limit.window * limit.per_second), now
        if credit >= 0:
            account[2] = 0
            self.stats[SEND] += 1
            return SEND
        account[2] = over = over + 1
        if over == 1:
            self.stats["limited"] += 1  # an account starts being limited
        if limit.slip and over % limit.slip == 0:
            self.stats["slipped"] += 1
            return SLIP
        self.stats["dropped"] += 1
        return DROP

    def _prune(self, now: int) -> None:
        """Forget accounts idle for a window; if still full, the oldest half."""
        window = self.limit.window
        for k in [k for k, a in self._accounts.items() if now - a[1] > window]:
            del self._accounts[k]
        if len(self._accounts) >= MAX_TABLE:
            for k in list(self._accounts)[: MAX_TABLE // 2]:
                del self._accounts[k]


def slipped(wire: bytes) -> bytes:
    """The truncated stand-in for response `wire`: header with TC=1, the question, and the
    response's OPT record if it has one (RFC 6891 §7: an EDNS query gets OPT back, DO
    echoed)."""
    end = 12
    while wire[end]:
        end += wire[end] + 1
    question = wire[12:end + 5]
    opt = _opt_record(wire, end + 5, sum(struct.unpack_from("!HHH", wire, 6)))
    return wire[:2] + bytes([wire[2] | 0x02, wire[3]]) + b"\x00\x01\x00\x00\x00\x00" + \
        (b"\x00\x01" if opt else b"\x00\x00") + question + opt


def _opt_record(wire: bytes, pos: int, count: int) -> bytes:
    """The OPT record among the `count` records from `pos` of a response we rendered."""
    for _ in range(count):
        start = pos
        while wire[pos] and wire[pos] < 0xC0:  # the owner: labels, then a pointer or the root
            pos += wire[pos] + 1
        pos += 2 if wire[pos] else 1
        rdtype, _, _, rdlen = struct.unpack_from("!HHIH", wire, pos)
        pos += 10 + rdlen
        if rdtype == 41:
            return wire[start:pos]
    return b""
