"""sigchain: a DNSSEC toolkit (keys, signing, verification, DS, validation, operations)."""

__version__ = "0.1.0"
