"""Who may transfer a zone: address/network and TSIG-key match lists (BIND's
allow-transfer), parsed from the config's strings."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.exception
import dns.name

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AclEntry:
    """Matches requests from `network` (any address when None) signed with `key` (signed or
    not when None). Both given: both must hold."""

    network: Network | None = None
    key: dns.name.Name | None = None

    def matches(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address,
                key: dns.name.Name | None) -> bool:
        if self.key is not None and self.key != key:
            return False
        return self.network is None or (
            address.version == self.network.version and address in self.network)

    def __str__(self) -> str:
        parts = []
        if self.network is not None:
            parts.append(str(self.network))
        if self.key is not None:
            parts.append(f"key:{self.key.to_text(omit_final_dot=True)}")
        return " ".join(parts) or "any"


def parse_acl_entry(text: str) -> AclEntry:
    """`any`, `ADDR`, `ADDR/LEN`, `key:NAME`, or `ADDR[/LEN] key:NAME` (both required).
    Raises ValueError with a message for anything else."""
    words = text.split()
    if words == ["any"]:
        return AclEntry()
    network: Network | None = None
    key: dns.name.Name | None = None
    for word in words:
        if word.startswith("key:"):
            if key is not None or not word[4:]:
                raise ValueError(f"bad ACL entry {text!r}: one key:NAME at most, with a name")
            try:
                key = dns.name.from_text(word[4:])
            except dns.exception.DNSException as exc:
                raise ValueError(f"bad key name in ACL entry {text!r}: {exc}") from None
        elif network is None:
            try:
                network = ipaddress.ip_network(word, strict=False)
            except ValueError:
                raise ValueError(
                    f"bad ACL entry {text!r}: expected any, ADDR[/LEN], key:NAME "
                    "or ADDR[/LEN] key:NAME") from None
        else:
            raise ValueError(f"bad ACL entry {text!r}: one address or network at most")
    if network is None and key is None:
        raise ValueError("empty ACL entry")
    return AclEntry(network, key)


@dataclass(frozen=True)
class Acl:
    """An address/TSIG-key match list; a request is allowed when any entry matches. Empty:
    nothing is allowed (sigchain's default for transfers)."""

    entries: tuple[AclEntry, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, items: Iterable[str]) -> Acl:
        return cls(tuple(parse_acl_entry(i) for i in items))

    @property
    def keys(self) -> frozenset[dns.name.Name]:
        return frozenset(e.key for e in self.entries if e.key is not None)

    def allows(self, address: str, key: dns.name.Name | None) -> bool:
        """Whether a request from `address`, TSIG-verified with `key` (None: unsigned), matches."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(e.matches(ip, key) for e in self.entries)

    def __str__(self) -> str:
        return ", ".join(map(str, self.entries)) or "none"
