"""Whole-zone verification, the dnssec-verify equivalent: a signed zone in, every problem as a Finding out."""
