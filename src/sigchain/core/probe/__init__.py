"""Monitoring probes, judged without I/O: what a zone's answers say about its signatures
(expiry, inception per RRset), its serial, its DS at the parent and a resolver's AD bit, and
the exporter's metric families built from the last snapshot.

zone (answers → signature times, serial, DS match), metrics (snapshot → metric families).
"""
