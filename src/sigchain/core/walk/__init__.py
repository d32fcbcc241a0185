"""Zone enumeration through denial records (the audit behind "NSEC3 raises the cost, it does
not make a zone secret"), without I/O: the NSEC walk as a query/reply machine, the NSEC3
chain collected from replies, and names recovered offline from a wordlist.

nsec (walk the NSEC chain), nsec3 (collect the hashed chain; recover names).
"""
