"""Generate a realistic zone for signing benchmarks: A, AAAA, MX, TXT, CNAME, a wildcard,
~5% delegations (half of them with DS) with glue. Deterministic for a given size."""

from __future__ import annotations

import argparse
import hashlib
import sys


def generate(origin: str, names: int, out) -> None:  # type: ignore[no-untyped-def]
    w = out.write
    w(f"$ORIGIN {origin}\n$TTL 3600\n")
    w("@ IN SOA ns1 hostmaster 2026112901 7200 3600 1209600 300\n")
    w("@ IN NS ns1\n@ IN NS ns2\n@ IN MX 10 mail\n@ IN TXT \"v=spf1 mx -all\"\n")
    w("ns1 IN A 192.0.2.1\nns2 IN AAAA 2001:db8::2\nmail IN A 192.0.2.25\n")
    w("*.wild IN A 192.0.2.99\n*.wild IN TXT \"wildcard\"\n")
    for i in range(names):
        label = f"h{i:07d}"
        kind = i % 20
        a = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        if kind == 0:  # delegation (5%), half with DS
            w(f"d{label} IN NS ns.d{label}\nns.d{label} IN A {a}\n")
            if (i // 20) % 2 == 0:
                digest = hashlib.sha256(label.encode()).hexdigest().upper()
                w(f"d{label} IN DS {i % 65536} 13 2 {digest}\n")
        elif kind in (1, 2):
            w(f"{label} IN CNAME h{(i + 1) % names:07d}\n")
        elif kind == 3:
            w(f"{label} IN MX 10 mail\n{label} IN A {a}\n")
        elif kind == 4:
            w(f"{label} IN TXT \"record {i} for benchmarking\"\n{label} IN A {a}\n")
        elif kind % 2 == 0:
            w(f"{label} IN A {a}\n{label} IN AAAA 2001:db8::{i & 0xffff:x}\n")
        else:
            w(f"{label} IN A {a}\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("names", type=int)
    p.add_argument("--origin", default="bench.test.")
    args = p.parse_args()
    generate(args.origin, args.names, sys.stdout)


if __name__ == "__main__":
    main()
