"""Diagnosis (pure): evidence from a resolver and from the authoritative chain → one cause."""
