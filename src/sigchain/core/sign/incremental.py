"""Incremental signing (pure): a signed zone held as RRsets with its zone shape, sorted owner
list and denial chain, changed by a `ChangeSet` at the cost of the change, not of the zone.

A change re-signs the changed RRsets, repairs the NSEC/NSEC3 chain around the names that
appeared or went (their records, their predecessors' next pointers, bitmaps, empty
non-terminals), bumps the SOA serial by the policy's rule and re-signs the SOA; `apply`
returns the difference as IXFR does (RRsets removed, RRsets added, old and new SOA first).
Names are label keys (core/zone/records), kept in a sorted list found by bisection.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

import dns.name
import dns.rdata
import dns.rdataclass
from dns.rdatatype import RdataType

from sigchain.core.dnssec.rrsig import SigWindow, serial_lt
from sigchain.core.sign.apex import next_serial, rdataset, set_apex
from sigchain.core.sign.batches import BY_KSK, BY_ZSK, UNSIGNED, role
from sigchain.core.sign.changecheck import check_changes
from sigchain.core.sign.difference import Changes, Diff, Ident, put, same, soa_serial
from sigchain.core.sign.keyset import KeyPlan, plan_keys
from sigchain.core.sign.render import denial_units
from sigchain.core.sign.rrsigs import (
    RRsetSigner,
    covered_type,
    expiration_of,
    fits,
    split_signed,
)
from sigchain.core.sign.signer import SignOptions, canonical_data, data_shape, signing_context
from sigchain.core.update.changes import ChangeSet
from sigchain.core.zone import nsec3hash
from sigchain.core.zone.records import (
    Key,
    RRsetRec,
    b32hex,
    from_rdataset,
    key_of,
    key_wire,
    type_bitmap,
)
from sigchain.core.zone.shape import NodeKind, nsec3_types, nsec_types
from sigchain.findings import Finding
from sigchain.model.keys import KeyPair

_IN_NSEC_CHAIN = (NodeKind.APEX, NodeKind.AUTH, NodeKind.DELEGATION)


class SignedZone:
    """A signed zone kept up to date change by change. Build it with `sign` (from unsigned
    data) or `adopt` (a zone signed before); change it with `apply` (data), `resign`
    (signature refresh) or `rekey` (a key roll's step). Not safe to share between threads:
    a server applies changes between answers, or serves an index made from each version."""

    def __init__(self, origin: dns.name.Name, keys: Sequence[KeyPair], opts: SignOptions,
                 now: int) -> None:
        self.origin, self.okey, self.opts = origin, key_of(origin), opts
        self.plan = plan_keys(keys, origin, now, opts.force)
        self.data: dict[Key, dict[int, RRsetRec]] = {}
        self.kinds: dict[Key, NodeKind] = {}
        self.names: list[Key] = []  # every name of `kinds`, in canonical order
        self.sigs: dict[Key, dict[int, RRsetRec]] = {}  # owner → type covered → RRSIG RRset
        self.denial: dict[Key, RRsetRec] = {}  # NSEC or NSEC3 RRset by its owner
        self.chain: list[Key] = []  # NSEC owners, or NSEC3 owners, in order
        self.hashed: dict[Key, Key] = {}  # NSEC3: name → its NSEC3 owner
        self.unhashed: dict[Key, Key] = {}  # NSEC3: NSEC3 owner → name
        self.denial_ttl = 0
        self.signer: RRsetSigner | None = None
        self._log: Changes | None = None
        # what `revert` puts back besides the records: the last change's key plan, signer
        # and denial TTL as they were before it
        self._undo: tuple[KeyPlan, RRsetSigner | None, int] | None = None

    # ---- building --------------------------------------------------------------------------

    @classmethod
    def sign(cls, rrsets: Iterable[RRsetRec], origin: dns.name.Name, keys: Sequence[KeyPair],
             opts: SignOptions, now: int) -> tuple[SignedZone, list[Finding]]:
        """Sign a whole zone (as `signer.prepare` reads it: apex records set, signer-made
        records of a signed input dropped) and keep it for incremental changes."""
        z = cls(origin, keys, opts, now)
        warnings = list(z.plan.warnings)
        data, apex_in, napex = canonical_data(rrsets, origin, z.okey)
        set_apex(apex_in, origin, keys, z.plan, opts, now, warnings)
        data[:napex] = sorted(from_rdataset(origin, rds) for rds in apex_in.values())
        z._hold(data)
        for n in z.chain:
            z._rebuild_denial(n, opts.window)
        for n in z.names:
            z._sync_sigs(n, set(z.data.get(n, ())), opts.window)
        return z, warnings

    @classmethod
    def adopt(cls, signed: Iterable[RRsetRec], origin: dns.name.Name, keys: Sequence[KeyPair],
              opts: SignOptions, now: int) -> tuple[SignedZone, Diff, list[Finding]]:
        """Take over a zone signed before (this signer's output read back, after a restart):
        its signatures are kept where they still fit (made by the keys that sign now, for
        the RRset's TTL, valid at `now`), its denial records where the chain wants them
        unchanged; the rest is re-signed or rebuilt, with the apex records the keys want.
        The difference from the zone as read, with the serial bumped, unless nothing changed."""
        z = cls(origin, keys, opts, now)
        warnings = list(z.plan.warnings)
        data, loaded_sigs, loaded_denial = split_signed(signed)
        z._hold(sorted(data, key=lambda r: (r.key, r.rdtype)))
        z.sigs, z.denial = loaded_sigs, loaded_denial
        return z, z._reconcile(keys, now, opts.window, warnings), warnings

    def rekey(self, keys: Sequence[KeyPair], now: int, window: SigWindow) -> tuple[Diff, list[Finding]]:
        """The keys or their timing changed (a rollover's step): the key plan redone at `now`,
        the DNSKEY, CDS and CDNSKEY RRsets as the keys want them, and every signature not made
        by exactly the keys that sign now replaced (all of them when the ZSKs change: the
        zone's whole re-sign, the only step of a roll that costs the zone's size)."""
        self._undo = (self.plan, self.signer, self.denial_ttl)
        self.plan = plan_keys(keys, self.origin, now, self.opts.force)
        self.signer = RRsetSigner(signing_context(self.plan, self.okey, self.origin, self.opts,
                                                  self.denial_ttl))
        warnings = list(self.plan.warnings)
        return self._reconcile(keys, now, window, warnings), warnings

    def _reconcile(self, keys: Sequence[KeyPair], now: int, window: SigWindow,
                   warnings: list[Finding]) -> Diff:
        """Bring the apex records, signatures and denial records in line with the key plan
        and the data; the difference, with the serial bumped unless nothing changed."""
        old_serial = self.serial
        log = self._log = Changes()
        try:
            self._drop_unfit(now)
            apex = {t: rdataset(t, r.ttl, [dns.rdata.from_text(dns.rdataclass.IN, t, x)
                                           for x in r.texts])
                    for t, r in self.data[self.okey].items() if t != RdataType.NSEC3PARAM}
            set_apex(apex, self.origin, keys, self.plan, replace(self.opts, serial="keep"), now,
                     warnings)
            wanted = {t: from_rdataset(self.origin, rds) for t, rds in apex.items()}
            touched = {t for t in set(wanted) | set(self.data[self.okey])
                       if not same(wanted.get(t), self.rrset(self.okey, t))}
            for t in touched:
                self._put_data(self.okey, t, wanted.get(t))
            self._repair({self.okey: touched} if touched else {}, {}, window)
            for n in self.names:
                self._sync_sigs(n, set(), window)
            for owner in self.chain:
                self._rebuild_denial(owner, window)
            if all(log.before[i] == log.after[i] for i in log.after):
                return Diff((), (), old_serial, old_serial)
            self._bump_serial(old_serial, now, window)
            return log.diff(old_serial, self.serial, (self.okey, RdataType.SOA, 0))
        finally:
            self._log = None

    def _hold(self, data: list[RRsetRec]) -> None:
        """Take the zone's data RRsets (canonical order): shape, signer, chain order."""
        for r in data:
            self.data.setdefault(r.key, {})[r.rdtype] = r
        _, zshape = data_shape(self.okey, data)
        self.kinds, self.names = dict(zshape.kinds), list(zshape.order)
        self.denial_ttl = self._denial_ttl()
        self.signer = RRsetSigner(signing_context(self.plan, self.okey, self.origin, self.opts,
                                                  self.denial_ttl))
        members = [n for n in self.names if self._in_chain(n)]
        if self.opts.nsec3 is not None:
            for n in members:
                self._hash_in(n)
            self.chain = sorted(self.unhashed)
        else:
            self.chain = members

    def _drop_unfit(self, now: int) -> None:
        """Adopting: remove denial records off the chain and signatures that cannot stay."""
        assert self.signer is not None
        chain = set(self.chain)
        denial_type = RdataType.NSEC if self.opts.nsec3 is None else RdataType.NSEC3
        for owner in [o for o in self.denial if o not in chain]:
            self._put_denial(owner, None)
        signers = {BY_ZSK: {(a, t) for a, t, _ in self.signer.zsk},
                   BY_KSK: {(a, t) for a, t, _ in self.signer.ksk}}
        for key, node in list(self.sigs.items()):
            for covered, sig in list(node.items()):
                if covered == denial_type and key in chain:
                    r: RRsetRec | None = self.denial.get(key)
                    who = BY_ZSK
                else:
                    r = self.rrset(key, covered)
                    who = role(self.kinds.get(key), covered)
                if r is None or who == UNSIGNED or not fits(sig, r.ttl, signers[who], now):
                    self._put_sig(key, covered, None)

    # ---- reading ---------------------------------------------------------------------------

    def rrset(self, key: Key, rdtype: int) -> RRsetRec | None:
        node = self.data.get(key)
        return None if node is None else node.get(rdtype)

    def types(self, key: Key) -> Sequence[int]:
        return list(self.data.get(key, {}))

    @property
    def serial(self) -> int:
        return soa_serial(self.data[self.okey][RdataType.SOA])

    def rrsets(self) -> Iterator[RRsetRec]:
        """Every RRset of the signed zone: data, RRSIGs, NSEC or NSEC3."""
        for node in self.data.values():
            yield from node.values()
        for node in self.sigs.values():
            yield from node.values()
        yield from self.denial.values()

    def text(self) -> str:
        """The signed zone as a master file."""
        lines = [f"$ORIGIN {self.origin}\n"]
        for r in self.rrsets():
            head = f"{r.owner} {r.ttl} IN {dns.rdatatype.to_text(r.rdtype)} "
            lines.extend(head + t + "\n" for t in r.texts)
        return "".join(lines)

    # ---- changing --------------------------------------------------------------------------

    def apply(self, changes: ChangeSet, window: SigWindow, now: int) -> Diff:
        """Apply a change set (RRsets removed and added, as `core.update` gives) and re-sign
        what it touches; refused (InputError / UnsafeRefused) before anything changes when
        the result would be no zone (SOA gone, data outside, DS without NS, NSEC3 clash)."""
        check_changes(self, changes)
        old_serial = self.serial
        self._undo = (self.plan, self.signer, self.denial_ttl)
        log = self._log = Changes()
        try:
            touched: dict[Key, set[int]] = {}
            cut_before = {k: self._is_cut(k) for k in {r.key for r in (*changes.removed, *changes.added)}}
            for r in changes.removed:
                self._put_data(r.key, r.rdtype, None)
                touched.setdefault(r.key, set()).add(r.rdtype)
            for r in changes.added:
                self._put_data(r.key, r.rdtype, r)
                touched.setdefault(r.key, set()).add(r.rdtype)
            if all(log.before[i] == log.after[i] for i in log.after):
                return Diff((), (), old_serial, old_serial)
            self._repair(touched, cut_before, window)
            self._bump_serial(old_serial, now, window)
            return log.diff(old_serial, self.serial, (self.okey, RdataType.SOA, 0))
        finally:
            self._log = None

    def resign(self, due: Iterable[tuple[Key, int]], window: SigWindow, now: int) -> Diff:
        """Re-sign the RRsets `due` ((owner, type): data, NSEC or NSEC3) in `window`, as a
        signature refresh does, and bump and re-sign the SOA."""
        old_serial = self.serial
        self._undo = (self.plan, self.signer, self.denial_ttl)
        self._log = Changes()
        try:
            for key, rdtype in due:
                if rdtype in (RdataType.NSEC, RdataType.NSEC3):
                    r = self.denial.get(key)
                    if r is not None:
                        self._put_sig(key, rdtype, self._sign(r, BY_ZSK, window))
                elif (r := self.rrset(key, rdtype)) is not None:
                    signer = role(self.kinds.get(key), rdtype)
                    if signer != UNSIGNED:
                        self._put_sig(key, rdtype, self._sign(r, signer, window))
            if not self._log.after:
                return Diff((), (), old_serial, old_serial)
            self._bump_serial(old_serial, now, window)
            return self._log.diff(old_serial, self.serial, (self.okey, RdataType.SOA, 0))
        finally:
            self._log = None

    def revert(self, diff: Diff) -> None:
        """Undo the last change (`apply`, `resign`, `rekey`), whose difference is `diff`: every
        record and signature back as it was, the zone's shape, chain and key plan with them
        (the server whose record of the change failed goes on serving, and later changing,
        the version it recorded). Only the last change can be undone, and only once."""
        if diff.empty:
            return
        assert self._undo is not None, "no change to undo"
        self.plan, self.signer, self.denial_ttl = self._undo
        self._undo = None
        old = {_ident(r): r for r in diff.removed}
        idents = [*old, *(i for i in map(_ident, diff.added) if i not in old)]
        touched: dict[Key, set[int]] = {}
        cut_before: dict[Key, bool] = {}
        for key, rdtype, covered in idents:  # the data first, as the change found it
            if rdtype not in _MADE:
                cut_before.setdefault(key, self._is_cut(key))
                put(self.data, key, rdtype, old.get((key, rdtype, covered)))
                touched.setdefault(key, set()).add(rdtype)
        names = set(touched) | set(self._reshape(touched, cut_before))
        self._rechain(self._with_opt_out_ancestors(names), set())
        for key, rdtype, covered in idents:  # then the signer's records, exactly as they were
            r = old.get((key, rdtype, covered))
            if rdtype == RdataType.RRSIG:
                put(self.sigs, key, covered, r)
            elif rdtype in _MADE:
                self._put_denial(key, r)

    def serial_above(self, floor: int, now: int, window: SigWindow) -> None:
        """Raise the SOA serial above `floor` (served before a restart) by the serial rule,
        the SOA re-signed; nothing when it is above already."""
        if not serial_lt(floor, self.serial):
            self._bump_serial(floor, now, window)

    def expirations(self) -> Iterator[tuple[Key, int, int]]:
        """(owner, type covered, earliest expiration) of every RRSIG RRset."""
        for key, node in self.sigs.items():
            for rdtype, sig in node.items():
                yield key, rdtype, expiration_of(sig)

    # ---- the zone shape, around the changed names ------------------------------------------

    def _is_cut(self, k: Key) -> bool:
        ts = self.data.get(k, {})
        return RdataType.DNAME in ts or (RdataType.NS in ts and k != self.okey)

    def _kind_of(self, n: Key) -> NodeKind | None:
        """The kind of name `n` now, as `shape` would classify it (its descendants done)."""
        if n == self.okey:
            return NodeKind.APEX
        ts = self.data.get(n)
        a = n[:-1]
        olen = len(self.okey)
        while len(a) >= olen:
            above = self.data.get(a)
            if above and (RdataType.DNAME in above or (RdataType.NS in above and len(a) > olen)):
                return NodeKind.OCCLUDED if ts else None
            a = a[:-1]
        if ts:
            return NodeKind.DELEGATION if RdataType.NS in ts else NodeKind.AUTH
        i = bisect.bisect_right(self.names, n)
        if i < len(self.names) and self.names[i][: len(n)] == n:
            return NodeKind.ENT
        return None

    def _reshape(self, touched: Iterable[Key], cut_before: dict[Key, bool]) -> dict[Key, NodeKind | None]:
        """Reclassify the changed names, their ancestors and, below a name that became or
        stopped being a cut, its subtree; the old kind of every name whose kind changed."""
        olen = len(self.okey)
        region: set[Key] = set()
        for k in touched:
            a = k
            while len(a) > olen and a not in region:
                region.add(a)
                a = a[:-1]
            if cut_before.get(k, False) != self._is_cut(k):
                i = bisect.bisect_right(self.names, k)
                while i < len(self.names) and self.names[i][: len(k)] == k:
                    below = self.names[i]
                    while len(below) > len(k) and below not in region:  # and would-be ENTs
                        region.add(below)
                        below = below[:-1]
                    i += 1
        changed: dict[Key, NodeKind | None] = {}
        for n in sorted(region, reverse=True):  # descendants before their ancestors
            old, new = self.kinds.get(n), self._kind_of(n)
            if old is new:
                continue
            changed[n] = old
            i = bisect.bisect_left(self.names, n)
            if new is None:
                del self.kinds[n]
                del self.names[i]
            else:
                if old is None:
                    self.names.insert(i, n)
                self.kinds[n] = new
        return changed

    # ---- repairing the signatures and the chain --------------------------------------------

    def _repair(self, touched: dict[Key, set[int]], cut_before: dict[Key, bool],
                window: SigWindow) -> None:
        changed_kinds = self._reshape(touched, cut_before)
        names = set(touched) | set(changed_kinds)
        for n in names:
            self._sync_sigs(n, touched.get(n, set()), window)
        dirty: set[Key] = set()
        self._rechain(self._with_opt_out_ancestors(names), dirty)
        ttl = self._denial_ttl()
        if ttl != self.denial_ttl:  # the SOA's TTL or minimum changed: every denial record
            self.denial_ttl = ttl
            dirty.update(self.chain)
        for owner in dirty:
            self._rebuild_denial(owner, window)

    def _with_opt_out_ancestors(self, names: set[Key]) -> set[Key]:
        """The changed names whose chain membership to look at again: with opt-out, their
        ancestors too (whether an empty non-terminal is covered depends on what is below)."""
        if self.opts.nsec3 is not None and self.opts.nsec3.opt_out:
            olen = len(self.okey)
            for n in list(names):
                while len(n) > olen + 1:
                    n = n[:-1]
                    names.add(n)
        return names

    def _sync_sigs(self, n: Key, resign: set[int], window: SigWindow) -> None:
        """Make the RRSIGs at `n` match its RRsets and kind: new ones signed, `resign` ones
        re-signed, those of RRsets gone or no longer signed removed."""
        kind = self.kinds.get(n)
        have = self.sigs.get(n, {})
        for rdtype in list(have):
            if rdtype not in self.data.get(n, {}) or role(kind, rdtype) == UNSIGNED:
                if rdtype not in (RdataType.NSEC, RdataType.NSEC3):
                    self._put_sig(n, rdtype, None)
        for rdtype, r in self.data.get(n, {}).items():
            signer = role(kind, rdtype)
            if signer != UNSIGNED and (rdtype in resign or rdtype not in have):
                self._put_sig(n, rdtype, self._sign(r, signer, window))

    def _in_chain(self, n: Key) -> bool:
        """Whether `n` owns an NSEC record, or has an NSEC3 record (RFC 5155 §7.1: with
        opt-out, not an insecure delegation, nor an empty non-terminal with only those
        below it)."""
        kind = self.kinds.get(n)
        p = self.opts.nsec3
        if p is None:
            return kind in _IN_NSEC_CHAIN
        if kind is None or kind is NodeKind.OCCLUDED:
            return False
        if not p.opt_out or kind in (NodeKind.APEX, NodeKind.AUTH):
            return True
        if kind is NodeKind.DELEGATION:
            return RdataType.DS in self.data[n]
        names, i = self.names, bisect.bisect_right(self.names, n)
        while i < len(names) and names[i][: len(n)] == n:
            below = self.kinds[names[i]]
            if below is NodeKind.AUTH or (below is NodeKind.DELEGATION
                                          and RdataType.DS in self.data[names[i]]):
                return True
            i += 1
        return False

    def _rechain(self, names: Iterable[Key], dirty: set[Key]) -> None:
        """Insert and remove the chain owners of `names`; mark the records to rebuild: each
        changed name's own, and its predecessor's (whose next pointer may have moved)."""
        moved: list[Key] = []
        nsec3 = self.opts.nsec3 is not None
        for n in names:
            owner = self.hashed.get(n) if nsec3 else (n if n in self.denial else None)
            now_in = self._in_chain(n)
            if now_in and owner is None:
                owner = self._hash_in(n) if nsec3 else n
                bisect.insort(self.chain, owner)
                moved.append(owner)
            elif owner is not None and not now_in:
                del self.chain[bisect.bisect_left(self.chain, owner)]
                if nsec3:
                    del self.hashed[n], self.unhashed[owner]
                self._put_denial(owner, None)
                self._put_sig(owner, RdataType.NSEC3 if nsec3 else RdataType.NSEC, None)
                moved.append(owner)
            if owner is not None and now_in:
                dirty.add(owner)
        for owner in moved:
            i = bisect.bisect_left(self.chain, owner)
            dirty.add(self.chain[i - 1])  # the predecessor (the last one, before the first)

    def _rebuild_denial(self, owner: Key, window: SigWindow) -> None:
        """The NSEC or NSEC3 record at chain owner `owner` as the data says; re-signed when
        it differs from the one there."""
        chain = self.chain
        i = bisect.bisect_left(chain, owner)
        nxt = chain[(i + 1) % len(chain)]
        assert self.signer is not None
        ctx = self.signer.ctx
        if self.opts.nsec3 is None:
            old = self.denial.get(owner)
            text = old.owner if old is not None else next(iter(self.data[owner].values())).owner
            kind = self.kinds[owner]
            bitmap = _bitmap(nsec_types(kind, self.data[owner]))
            entry: tuple = (owner, text, nxt, bitmap)  # type: ignore[type-arg]
            rdtype = RdataType.NSEC
        else:
            name = self.unhashed[owner]
            kind = self.kinds[name]
            bitmap = _bitmap(nsec3_types(kind, self.data.get(name, ()), True))
            entry = (owner[-1], nxt[-1], bitmap)
            rdtype = RdataType.NSEC3
        ((record, _),) = denial_units([entry], self.denial_ttl, self.opts.nsec3, ctx.signer_wire,
                                      ctx.signer_text, BY_ZSK)
        if not same(record, self.denial.get(owner)) or rdtype not in self.sigs.get(owner, {}):
            self._put_denial(owner, record)
            self._put_sig(owner, rdtype, self._sign(record, BY_ZSK, window))

    def _bump_serial(self, old_serial: int, now: int, window: SigWindow) -> None:
        """The serial by the policy's rule (`keep` counts as `increment`: every change must
        reach the secondaries), unless the change itself raised it; the SOA re-signed."""
        soa = self.data[self.okey][RdataType.SOA]
        serial = soa_serial(soa)
        if not serial_lt(old_serial, serial):
            rule = self.opts.serial if self.opts.serial != "keep" else "increment"
            fields = soa.texts[0].split()
            fields[2] = str(next_serial(old_serial, rule, now))
            text = " ".join(fields)
            wire = dns.rdata.from_text(dns.rdataclass.IN, RdataType.SOA, text).to_digestable()
            soa = RRsetRec(soa.key, soa.owner, soa.rdtype, soa.ttl, (wire,), (text,))
            self._put_data(self.okey, RdataType.SOA, soa)
        self._put_sig(self.okey, RdataType.SOA, self._sign(soa, BY_ZSK, window))

    # ---- small pieces ----------------------------------------------------------------------

    def _sign(self, r: RRsetRec, signer: int, window: SigWindow) -> RRsetRec:
        assert self.signer is not None
        return self.signer.sign(r, signer, window)

    def _denial_ttl(self) -> int:
        soa = self.data[self.okey][RdataType.SOA]
        return min(int(soa.texts[0].split()[6]), soa.ttl)  # RFC 9077

    def nsec3_owner(self, n: Key) -> Key:
        p = self.opts.nsec3
        assert p is not None
        digest = nsec3hash.nsec3_digest_wire(key_wire(n), p.salt, p.iterations)
        return self.okey + (b32hex(digest).encode(),)

    def _hash_in(self, n: Key) -> Key:
        owner = self.nsec3_owner(n)
        self.hashed[n], self.unhashed[owner] = owner, n
        return owner

    def _put_data(self, key: Key, rdtype: int, r: RRsetRec | None) -> None:
        old = put(self.data, key, rdtype, r)
        if self._log is not None:
            self._log.note((key, rdtype, 0), old, r)

    def _put_sig(self, key: Key, covered: int, r: RRsetRec | None) -> None:
        assert r is None or covered_type(r.wires[0]) == covered
        old = put(self.sigs, key, covered, r)
        if self._log is not None:
            self._log.note((key, RdataType.RRSIG, covered), old, r)

    def _put_denial(self, owner: Key, r: RRsetRec | None) -> None:
        old = self.denial.get(owner)
        if r is None:
            self.denial.pop(owner, None)
        else:
            self.denial[owner] = r
        if self._log is not None:
            rdtype = RdataType.NSEC if self.opts.nsec3 is None else RdataType.NSEC3
            self._log.note((owner, rdtype, 0), old, r)


_MADE = (RdataType.RRSIG, RdataType.NSEC, RdataType.NSEC3)  # the signer's records, not data


def _ident(r: RRsetRec) -> Ident:
    return r.key, r.rdtype, covered_type(r.wires[0]) if r.rdtype == RdataType.RRSIG else 0


_BITMAPS: dict[tuple[int, ...], tuple[bytes, str]] = {}


def _bitmap(types: Iterable[int]) -> tuple[bytes, str]:
    ts = tuple(types)
    got = _BITMAPS.get(ts)
    if got is None:
        got = _BITMAPS[ts] = type_bitmap(ts)
    return got
