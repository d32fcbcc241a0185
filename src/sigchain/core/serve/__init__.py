"""Authoritative answers: zone index, lookup, denial proofs for the outcome, message and wire rendering, the response cache; zone transfers."""
