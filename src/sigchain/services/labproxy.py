"""A misbehaving DNS middlebox for the lab's drills: relays UDP and TCP to one upstream and
either drops RRSIG and DNSKEY records (`strip`) or cuts UDP replies at 512 bytes without
setting TC (`small`). Run as `python -m sigchain.services.labproxy MODE LISTEN UPSTREAM
[LABDIR]` (LABDIR only marks the process as that lab's)."""

from __future__ import annotations

import socket
import socketserver
import struct
import sys
import threading

import dns.exception
import dns.message
import dns.rdatatype

from sigchain.core.validate.anchors import Server, parse_server

CLASSIC_UDP = 512
TIMEOUT = 5.0
DROPPED = (dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)


def strip(wire: bytes) -> bytes:
    """The reply without RRSIG and DNSKEY records (as a DNSSEC-unaware firewall or old
    forwarder hands it on); an unparseable reply goes through unchanged."""
    try:
        msg = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return wire
    for section in (msg.answer, msg.authority, msg.additional):
        section[:] = [r for r in section if r.rdtype not in DROPPED]
    return msg.to_wire()


def relay_udp(upstream: Server, query: bytes) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT)
        s.connect((upstream.host, upstream.port))
        s.send(query)
        try:
            return s.recv(65535)
        except OSError:
            return None


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def relay_tcp(upstream: Server, query: bytes) -> bytes:
    with socket.create_connection((upstream.host, upstream.port), timeout=TIMEOUT) as s:
        s.sendall(struct.pack("!H", len(query)) + query)
        (n,) = struct.unpack("!H", _read_exact(s, 2))
        return _read_exact(s, n)


def serve(mode: str, listen: Server, upstream: Server) -> None:
    def change(wire: bytes, udp: bool) -> bytes:
        if mode == "strip":
            return strip(wire)
        return wire[:CLASSIC_UDP] if udp else wire  # TC stays as the upstream set it

    class Udp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            reply = relay_udp(upstream, data)
            if reply is not None:
                sock.sendto(change(reply, True), self.client_address)

    class Tcp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                (n,) = struct.unpack("!H", _read_exact(self.request, 2))
                reply = change(relay_tcp(upstream, _read_exact(self.request, n)), False)
                self.request.sendall(struct.pack("!H", len(reply)) + reply)
            except (OSError, EOFError, struct.error):
                return

    socketserver.ThreadingUDPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    udp = socketserver.ThreadingUDPServer((listen.host, listen.port), Udp)
    tcp = socketserver.ThreadingTCPServer((listen.host, listen.port), Tcp)
    udp.daemon_threads = tcp.daemon_threads = True
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    print(f"labproxy {mode} on {listen} → {upstream}", flush=True)
    udp.serve_forever()


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or argv[0] not in ("strip", "small"):
        print("usage: python -m sigchain.services.labproxy strip|small LISTEN UPSTREAM [LABDIR]",
              file=sys.stderr)
        return 2
    serve(argv[0], parse_server(argv[1]), parse_server(argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
