"""Iterative resolution, sans-I/O: which query to send next, told what came back (later: the cache and server selection)."""
