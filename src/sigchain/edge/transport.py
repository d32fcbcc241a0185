"""DNS queries on the wire for the resolver side: UDP with EDNS0 (DO=1, 1232-byte buffer, as
`core.resolve.exchange.Query.message` builds them), TCP when the reply is truncated (RFC 7766 §5),
and the next server when one does not answer in time."""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.query

from sigchain.core.resolve.exchange import Outcome, Query, Reply
from sigchain.core.resolve.resolution import Resolution
from sigchain.core.validate.anchors import Server

DEFAULT_TIMEOUT = 2.0  # seconds per server and attempt


def _describe(exc: BaseException) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__


def ask(server: Server, message: dns.message.Message, timeout: float = DEFAULT_TIMEOUT) -> Reply:
    """One exchange with one server: UDP, then TCP if the UDP reply has TC set."""
    udp = dns.query.udp(message, server.host, timeout=timeout, port=server.port,
                        ignore_unexpected=True)
    if not udp.flags & dns.flags.TC:
        return Reply(server, udp, False, len(udp.to_wire()))
    tcp = dns.query.tcp(message, server.host, timeout=timeout, port=server.port)
    return Reply(server, tcp, True, len(tcp.to_wire()))


def exchange(query: Query, timeout: float = DEFAULT_TIMEOUT) -> tuple[Reply | None, str]:
    """Send `query` to its servers in order until one answers; (None, why) if none does."""
    message = query.message()
    errors: list[str] = []
    for server in query.servers:
        try:
            return ask(server, message, timeout), ""
        except (dns.exception.DNSException, OSError, EOFError, ValueError) as exc:
            errors.append(f"{server}: {_describe(exc)}")
    return None, "; ".join(errors) or "no server to ask"


def run(resolution: Resolution, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """Drive a resolution over the network until it has an outcome."""
    while (query := resolution.next_query()) is not None:
        reply, error = exchange(query, timeout)
        resolution.result(reply, error)
    assert resolution.outcome is not None
    return resolution.outcome
