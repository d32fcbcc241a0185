"""The lab hierarchy's plan: which zones are served where, with which records and keys, and what to do to bring it up."""
