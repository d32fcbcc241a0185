"""`sigchain ds`: DS/CDS/CDNSKEY lines byte-identical to dnssec-dsfromkey."""

from __future__ import annotations

import click
import dns.rdatatype

from sigchain.cli.common import handle_errors
from sigchain.core.dnssec import ds as dscore
from sigchain.edge import keystore, zonefile
from sigchain.errors import InputError
from sigchain.model.keys import FLAG_REVOKE, FLAG_SEP, FLAG_ZONE


@click.command()
@click.argument("keyfiles", nargs=-1)
@click.option("--zone", "zonefile_", metavar="SIGNEDZONE", help="Take the KSKs from a zone file.")
@click.option("--origin", default=None, help="Zone name for --zone (default: $ORIGIN or file name).")
@click.option("--digest", type=click.Choice(["2", "4"]), default="2", show_default=True,
              help="2 = SHA-256, 4 = SHA-384.")
@click.option("--cds", is_flag=True, help="Also print CDS records.")
@click.option("--cdnskey", is_flag=True, help="Also print CDNSKEY records.")
@handle_errors
def ds(keyfiles: tuple[str, ...], zonefile_: str | None, origin: str | None, digest: str,
       cds: bool, cdnskey: bool) -> None:
    """Print DS records for KEYFILE(s) or for the KSKs of a zone."""
    if bool(keyfiles) == bool(zonefile_):
        raise InputError("give key files or --zone SIGNEDZONE (not both)")
    pairs = []
    if zonefile_:
        zone = zonefile.load_zone(zonefile_, origin, require_ns=False)
        for rds in zone.nodes.get(zone.origin, []):
            if rds.rdtype == dns.rdatatype.DNSKEY:
                pairs += [
                    (zone.origin, rd) for rd in rds
                    if rd.flags & FLAG_SEP and rd.flags & FLAG_ZONE and not rd.flags & FLAG_REVOKE
                ]
        if not pairs:
            raise InputError(f"no KSK (SEP) DNSKEY at {zone.origin}", file=zonefile_)
    for path in keyfiles:
        owner, _ttl, rd = keystore.load_public(path)
        pairs.append((owner, rd))
    lines = []
    for owner, rd in pairs:
        lines.append(dscore.ds_text(owner, dscore.make_ds(owner, rd, int(digest))))
        if cds:
            lines.append(dscore.ds_text(owner, dscore.make_ds(owner, rd, int(digest)), "CDS"))
        if cdnskey:
            lines.append(dscore.cdnskey_text(owner, rd))
    click.echo("\n".join(lines))
