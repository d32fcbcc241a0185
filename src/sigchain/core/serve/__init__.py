"""Authoritative answers: zone index, lookup, denial proofs for the outcome, message and wire rendering, the response cache; zone transfers.

index (zones indexed once per load; the served set), lookup (steps → typed outcomes),
proofs (NSEC/NSEC3 for an outcome), outcome (their types), wire (sections → response wire),
message (the dnspython slow path), fastpath (plain queries from the wire, via cache),
cache (the response cache), limits (response sizes), transfer (AXFR/IXFR, NOTIFY), acl.
"""
