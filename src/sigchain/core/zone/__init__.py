"""A zone's data: compact records and label keys, canonical wire RRsets, zone shape (apex, cuts, glue, ENTs), NSEC3 hashing."""

# Every reader of zone data and of DNS messages imports this package: the RR types dnspython
# lacks are registered before any is parsed (not at `import sigchain`: --help stays light).
from sigchain.core.zone import rdtypes as _rdtypes  # noqa: E402

_rdtypes.register()
