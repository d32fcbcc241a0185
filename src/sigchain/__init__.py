"""sigchain: a DNSSEC toolkit (keys, signing, verification, DS, validation, operations)."""

import warnings

__version__ = "0.1.0"

# cryptography >= 51 deprecates DSA, and dnspython's DSA module touches those classes at
# import, so every `import dns.dnssec` printed eight lines of warnings to stderr (and a bad
# input's one-line error became nine).  sigchain never signs or validates with DSA
# (algorithms 3 and 6 are MUST NOT in RFC 8624); the warning is about a module we do not
# use, so only that message from that module is silenced.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"dns\.dnssecalgs\.dsa")
