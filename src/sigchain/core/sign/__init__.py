"""Zone signing: key selection, apex records (DNSKEY, CDS, NSEC3PARAM, serial), NSEC/NSEC3 chains, signing batches and rendering."""
