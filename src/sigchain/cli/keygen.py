"""`sigchain keygen`: the dnssec-keygen equivalent."""

from __future__ import annotations

import click
import dns.exception
import dns.name

from sigchain.cli.common import handle_errors
from sigchain.clock import SYSTEM
from sigchain.core.dnssec import algorithms, keyfile
from sigchain.core.dnssec.policy import DEFAULT_POLICY
from sigchain.edge import keystore
from sigchain.errors import InputError, OperationalError
from sigchain.model.keys import FLAG_REVOKE, KeyPair, KeyRole, KeyTiming


@click.command()
@click.argument("zone")
@click.option("--role", type=click.Choice(["ksk", "zsk", "csk"]), required=True)
@click.option("--algorithm", "-a", default="ecdsap256sha256", show_default=True)
@click.option("--bits", "-b", type=int, default=None, help="RSA modulus size (default 2048).")
@click.option("--dir", "directory", default=".", show_default=True, help="Key directory.")
@click.option("--ttl", "-L", type=int, default=None, help="DNSKEY TTL written into the .key file.")
@click.option("--force", is_flag=True, help="Allow algorithms RFC 8624/9904 forbid for signing.")
@handle_errors
def keygen(zone: str, role: str, algorithm: str, bits: int | None, directory: str,
           ttl: int | None, force: bool) -> None:
    """Generate a key pair for ZONE; prints the BIND base name (Kzone.+AAA+TTTTT)."""
    try:
        origin = dns.name.from_text(zone)
    except dns.exception.DNSException as exc:
        raise InputError(f"bad zone name {zone!r}: {exc}") from None
    alg = algorithms.from_text(algorithm)
    DEFAULT_POLICY.check_may_sign(alg, force)
    if bits is not None and alg.family != "rsa":
        raise InputError(f"--bits applies to RSA algorithms only, not {alg.mnemonic}")
    krole = KeyRole(role)
    now = SYSTEM.now()
    used = keystore.existing_tags(directory, origin)
    for _ in range(100):
        private = algorithms.generate(alg, bits)
        dnskey = keyfile.make_dnskey(alg, private, krole.flags)
        timing = KeyTiming(created=now, publish=now, activate=now)
        kp = KeyPair(origin, alg.number, dnskey, private, timing, ttl)
        revoked = keyfile.make_dnskey(alg, private, krole.flags | FLAG_REVOKE)
        revoked_tag = KeyPair(origin, alg.number, revoked, private, timing).key_tag
        # As dnssec-keygen: avoid a tag (or revoked tag) already used in the directory.
        if (alg.number, kp.key_tag) not in used and (alg.number, revoked_tag) not in used:
            break
    else:
        raise OperationalError("could not find an unused key tag")
    click.echo(keystore.write_pair(directory, kp, alg))
