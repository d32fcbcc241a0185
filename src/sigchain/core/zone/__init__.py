"""A zone's data: compact records and label keys, canonical wire RRsets, zone shape (apex, cuts, glue, ENTs), NSEC3 hashing."""
