"""DNSSEC primitives: algorithms and their RFC 8624/9904 status, RRSIG fields and times, DS digests, BIND key files, time syntax, and the one DNSSEC policy object."""
