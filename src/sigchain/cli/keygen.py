"""`sigchain keygen`: the dnssec-keygen equivalent."""

from __future__ import annotations

import os

import click
import dns.exception
import dns.name

from sigchain.cli.common import JSON_OPTION, emit_json, handle_errors, json_keys, warn
from sigchain.clock import SYSTEM
from sigchain.core.dnssec import algorithms
from sigchain.core.dnssec.policy import DEFAULT_POLICY
from sigchain.edge import keystore, pkcs11store
from sigchain.errors import InputError
from sigchain.model.keys import KeyRole, KeyTiming

JSON_KEYS = ("zone", "base", "key_tag", "algorithm", "flags", "role", "files")


@click.command()
@click.argument("zone")
@click.option("--role", type=click.Choice(["ksk", "zsk", "csk"]), required=True,
              help="ksk: SEP flag (257), signs the DNSKEY RRset; zsk: flags 256, signs the "
                   "zone's data; csk: both.")
@click.option("--algorithm", "-a", default="ecdsap256sha256", show_default=True,
              help="DNSSEC algorithm, by name or number: "
                   + ", ".join(sorted(a.mnemonic.lower() for a in algorithms.ALGORITHMS.values()
                                      if a.may_sign)) + ".")
@click.option("--bits", "-b", type=click.IntRange(1024, 4096), default=None,
              help="RSA modulus size in bits (RSA only; default 2048).")
@click.option("--dir", "directory", default=".", show_default=True,
              help="Key directory (made, mode 0700, if missing).")
@click.option("--ttl", "-L", type=click.IntRange(0), default=None,
              help="DNSKEY TTL in seconds written into the .key file (default: none, the "
                   "zone's TTL applies).")
@click.option("--store", default=None, metavar="URI",
              help="Make the key pair inside a PKCS#11 token, non-extractable: an RFC 7512 URI "
                   "such as 'pkcs11:token=T;object=LABEL?pin-source=FILE' (or pin-value=, "
                   "module-path=; default module $SIGCHAIN_PKCS11_MODULE or SoftHSM2's). The "
                   ".private file then holds only the URI (Label:), no key material.")
@click.option("--force", is_flag=True, help="Allow algorithms RFC 8624/9904 forbid for signing.")
@JSON_OPTION
@handle_errors
@json_keys(*JSON_KEYS)
def keygen(zone: str, role: str, algorithm: str, bits: int | None, directory: str,
           ttl: int | None, store: str | None, force: bool, as_json: bool) -> None:
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
    uri = None if store is None else pkcs11store.parse_uri(store)  # told before anything is made
    now = SYSTEM.now()
    kp = keystore.new_pair(origin, alg, krole, directory,
                           KeyTiming(created=now, publish=now, activate=now), ttl, bits, store)
    base = keystore.write_new_pair(directory, kp, alg)
    if uri is not None and uri.pin_value is not None:
        warn("the PIN (pin-value) is written into the .private file's Label; pin-source=FILE "
             "keeps it in a file of its own")
    if as_json:
        path = os.path.join(directory, base)
        emit_json({"zone": origin.to_text(), "base": base, "key_tag": kp.key_tag,
                   "algorithm": alg.number, "flags": kp.flags, "role": role,
                   "files": {"key": path + ".key", "private": path + ".private"}, "error": None})
    else:
        click.echo(base)
