"""Validation: evidence for one question plus trust anchors and now -> Verdict; NSEC/NSEC3 denial proofs; trust anchors and root hints."""
