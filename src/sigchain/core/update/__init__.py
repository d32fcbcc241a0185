"""RFC 2136 dynamic update: an UPDATE message checked (zone, permission, prerequisites, update
section) and applied to a copy of a zone's RRsets, giving the change set or the refusing rcode."""
