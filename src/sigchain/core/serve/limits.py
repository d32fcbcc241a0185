"""Response sizes: our EDNS UDP size and the largest response a query may get (RFC 6891)."""

DEFAULT_UDP_SIZE = 1232  # advertised and used as our UDP ceiling (DNS flag day 2020, BIND)
MIN_UDP_SIZE = 512  # RFC 1035 §4.2.1; RFC 6891 §6.2.5: smaller EDNS sizes count as 512
MAX_UDP_SIZE = 65535  # the EDNS UDP size field is 16 bits (RFC 6891 §6.1.2)
TCP_MAX = 65535


def response_limit(udp_size: int, tcp: bool, edns: bool, payload: int) -> int:
    """Largest response allowed: 65535 on TCP; on UDP the client's EDNS size (`payload`)
    bounded by ours (`udp_size`), at least 512 (RFC 6891 §6.2.3-6.2.5), or 512 without EDNS."""
    if tcp:
        return TCP_MAX
    if not edns:
        return MIN_UDP_SIZE
    return max(MIN_UDP_SIZE, min(payload, udp_size))
