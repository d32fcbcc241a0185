"""`sigchain ds`: DS/CDS/CDNSKEY lines byte-identical to dnssec-dsfromkey."""

from __future__ import annotations

import base64

import click
import dns.rdatatype

from sigchain.cli.common import JSON_OPTION, emit_json, handle_errors, json_keys
from sigchain.core.dnssec import ds as dscore
from sigchain.edge import keystore, zonefile
from sigchain.errors import InputError
from sigchain.model.keys import FLAG_REVOKE, FLAG_SEP, FLAG_ZONE


@click.command()
@click.argument("keyfiles", nargs=-1)
@click.option("--zone", "zonefile_", metavar="SIGNEDZONE",
              help="Take the KSKs (SEP, not revoked) from this zone file's apex DNSKEY RRset "
                   "instead of key files (default: the KEYFILE arguments).")
@click.option("--origin", default=None, help="Zone name for --zone (default: $ORIGIN or file name).")
@click.option("--digest", type=click.Choice(["2", "4"]), default="2", show_default=True,
              help="DS digest type: 2 = SHA-256, 4 = SHA-384.")
@click.option("--cds", is_flag=True, help="Also print a CDS record per key (RFC 7344).")
@click.option("--cdnskey", is_flag=True, help="Also print a CDNSKEY record per key (RFC 7344).")
@JSON_OPTION
@handle_errors
@json_keys("records")
def ds(keyfiles: tuple[str, ...], zonefile_: str | None, origin: str | None, digest: str,
       cds: bool, cdnskey: bool, as_json: bool) -> None:
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
    records: list[dict[str, object]] = []  # structured, for --json
    lines: list[str] = []  # as dnssec-dsfromkey prints them
    for owner, rd in pairs:
        d = dscore.make_ds(owner, rd, int(digest))
        for rrtype in ("DS", "CDS") if cds else ("DS",):
            records.append({"owner": owner.to_text(), "ttl": None, "type": rrtype,
                            "key_tag": d.key_tag, "algorithm": d.algorithm,
                            "digest_type": d.digest_type, "digest": d.digest.hex().upper()})
            lines.append(dscore.ds_text(owner, d, rrtype))
        if cdnskey:
            records.append({"owner": owner.to_text(), "ttl": None, "type": "CDNSKEY",
                            "flags": rd.flags, "protocol": rd.protocol, "algorithm": rd.algorithm,
                            "key": base64.b64encode(rd.key).decode("ascii")})
            lines.append(dscore.cdnskey_text(owner, rd))
    if as_json:
        emit_json({"records": records, "error": None})
    else:
        click.echo("\n".join(lines))
