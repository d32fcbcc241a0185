"""The lookup inside one zone (RFC 1034 §4.3.2, RFC 4592 wildcards, RFC 6672 DNAME): each
step returns a typed `Outcome` (hit, CNAME/DNAME to follow, NODATA, NXDOMAIN, delegation)
and fills the sections; the denial proofs for it are a separate step (`proofs.prove`)."""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rrset
from dns.rdatatype import RdataType

from sigchain.core.serve.index import Node, ZoneIndex, key_name, parent, wire_key, within
from sigchain.core.serve.outcome import Outcome, Sections
from sigchain.core.serve.proofs import prove
from sigchain.core.zone.shape import NodeKind

MAX_CHAIN = 16  # CNAME/DNAME links followed inside a zone before giving up
_ADDRESS = (RdataType.A, RdataType.AAAA)


def lookup(zone: ZoneIndex, qname: dns.name.Name | bytes, qtype: int, do: bool) -> Sections:
    """The authoritative answer from one zone for `qname`/`qtype` (no message framing), with
    the DNSSEC records of RFC 4035 §3.1 when `do` and the zone is signed."""
    key = qname if isinstance(qname, bytes) else wire_key(qname)
    return _Lookup(zone, do).run(key, qtype)


class _Lookup:
    """RFC 1034 §4.3.2 inside one zone. Names are keys (`wire_key`); `synth` is the queried
    key when a wildcard answers."""

    def __init__(self, zone: ZoneIndex, do: bool):
        self.z = zone
        self.do = do and zone.denial != "none"
        self.s = Sections()

    def run(self, key: bytes, qtype: int) -> Sections:
        seen = {key}
        for _ in range(MAX_CHAIN):
            outcome = self._step(key, qtype)
            if self.do:
                prove(self.z, self.s, outcome)
            target = outcome.target
            if target is None or not within(target, self.z.okey) or target in seen:
                return self.s  # (a loop: each of its links once, as Knot answers; the
            seen.add(target)  # resolver finds the loop, RFC 1034 §5.2.2)
            key = target
        return self.s

    def _rrset(self, section: str, node: Node, rdtype: int, synth: bytes | None = None) -> None:
        self.s.add(section, node.rrsets[rdtype], synth)
        if self.do:
            self.s.add(section, node.sigs.get(rdtype), synth)

    def _soa(self) -> None:
        self.s.add("authority", self.z.negative_soa)
        if self.do:
            self.s.add("authority", self.z.negative_soa_sig)

    def _cut_above(self, key: bytes, qtype: int) -> tuple[str, bytes] | None:
        """The topmost zone cut or DNAME on the way from the apex down to `key`."""
        z = self.z
        if not z.cut_keys and not z.dname_keys:
            return None
        chain = [key]
        while len(chain[-1]) > len(z.okey):
            chain.append(parent(chain[-1]))
        for anc in reversed(chain):
            if anc in z.cut_keys:
                if anc == key and qtype == RdataType.DS:
                    return None  # DS lives on the parent side: answer it here (RFC 4035 §3.1.4.1)
                return ("cut", anc)
            if anc in z.dname_keys and anc != key:
                return ("dname", anc)
        return None

    def _step(self, key: bytes, qtype: int) -> Outcome:
        """Answer `key`/`qtype` as far as this zone goes."""
        z = self.z
        cut = self._cut_above(key, qtype)
        if cut is not None:
            kind, at = cut
            if kind == "dname":
                return self._dname(key, at)
            # (a CNAME chain that led below a cut: the referral follows the answer so far,
            # which keeps AA: RFC 1034 §4.3.2 step 3b, as named, Knot and NSD answer)
            self._referral(at, aa=bool(self.s.answer))
            return Outcome("delegation", key, cut=at)
        node = z.by_key.get(key)
        if node is not None:
            return self._at_node(node, key, qtype)
        if z.kind_by_key.get(key) is NodeKind.ENT:
            self._soa()
            return Outcome("nodata", key)
        return self._missing(key, qtype)

    def _missing(self, key: bytes, qtype: int) -> Outcome:
        """The name does not exist: find the closest encloser, then the wildcard
        (RFC 4592 §4.3.2)."""
        z = self.z
        ce = parent(key)
        while ce not in z.kind_by_key and len(ce) > len(z.okey):
            ce = parent(ce)
        wild = b"\x01*" + ce
        wnode = z.by_key.get(wild)
        if wnode is None and z.kind_by_key.get(wild) is NodeKind.ENT:
            # an empty non-terminal source of synthesis: it exists, with no data (RFC 4592
            # §4.9): NODATA, as BIND answers, not NXDOMAIN
            self._soa()
            return Outcome("nodata", key, ce=ce, wildcard=wild)
        if wnode is None:
            self.s.rcode = dns.rcode.NXDOMAIN
            self._soa()
            return Outcome("nxdomain", key, ce=ce)
        if (qtype in wnode.rrsets or qtype == RdataType.ANY or RdataType.CNAME in wnode.rrsets
                or (qtype == RdataType.RRSIG and wnode.sigs)):
            return self._at_node(wnode, key, qtype, ce, wild)
        self._soa()
        return Outcome("nodata", key, ce=ce, wildcard=wild)

    def _at_node(self, node: Node, key: bytes, qtype: int, ce: bytes | None = None,
                 wild: bytes | None = None) -> Outcome:
        """Answer from an existing node: `key`'s own, or the wildcard `wild` below the closest
        encloser `ce` (its records then given the owner `key`, RFC 4592 §4.3.3)."""
        synth = None if wild is None else key
        if qtype == RdataType.ANY:  # every RRset and its RRSIGs, DO or not (as BIND)
            for t in sorted(node.rrsets):
                self.s.add("answer", node.rrsets[t], synth)
                if self.z.denial != "none":
                    self.s.add("answer", node.sigs.get(t), synth)
            return Outcome("hit", key, None, ce, wild)
        if qtype == RdataType.RRSIG and node.sigs:  # (at a wildcard: synthesised, RFC 4592
            for t in sorted(node.sigs):  # §4.3.3, as BIND and NSD answer; with the proof that
                self.s.add("answer", node.sigs[t], synth)  # the name itself does not exist)
            return Outcome("hit", key, None, ce, wild)
        if qtype in node.rrsets:
            self._rrset("answer", node, qtype, synth)
            return Outcome("hit", key, None, ce, wild)
        if RdataType.CNAME in node.rrsets:
            self._rrset("answer", node, RdataType.CNAME, synth)
            target = wire_key(node.rrsets[RdataType.CNAME][0].target)  # type: ignore[attr-defined]
            return Outcome("cname", key, target, ce, wild)
        self._soa()
        return Outcome("nodata", key, existing=True)

    def _referral(self, cut: bytes, aa: bool = False) -> None:
        """Delegation (RFC 1034 §4.3.2 step 3b): NS and glue, AA off (the DS or its absence
        is added by `proofs.prove`). Glue that is the zone's own signed data (a sibling's
        name server, outside every cut) comes with its RRSIGs (RFC 4035 §3.1.1; they are
        the first to go when the response is too big: `message.render`)."""
        s, z = self.s, self.z
        node = z.by_key[cut]
        s.aa = aa
        s.add("authority", node.rrsets[RdataType.NS])
        for target in z.glue_of(cut):
            glue = z.by_key[target]
            for t in _ADDRESS:
                if t in glue.rrsets:
                    s.add("additional", glue.rrsets[t])
                    if self.do:  # (glue below a cut has none)
                        s.add("additional", glue.sigs.get(t))

    def _dname(self, key: bytes, at: bytes) -> Outcome:
        """DNAME substitution with an unsigned synthesized CNAME (RFC 6672 §3.2, §5.3.1)."""
        node = self.z.by_key[at]
        dname = node.rrsets[RdataType.DNAME]
        self._rrset("answer", node, RdataType.DNAME)
        name = key_name(key)
        try:
            suffix = dname[0].target  # type: ignore[attr-defined]
            target = name.relativize(key_name(at)).concatenate(suffix)
        except dns.name.NameTooLong:
            self.s.rcode = dns.rcode.YXDOMAIN
            return Outcome("yxdomain", key)
        cname = dns.rrset.from_text(name, dname.ttl, "IN", "CNAME", target.to_text())
        self.s.transient.add(id(cname))
        self.s.add("answer", cname)
        return Outcome("dname", key, target=wire_key(target))
