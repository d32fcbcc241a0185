"""The RFC 8914 Extended DNS Errors a resolver attaches to its answers: which code and text a
verdict or a failed resolution gets, so that every SERVFAIL says why."""

from __future__ import annotations

from collections.abc import Iterable

from sigchain.core.resolve.exchange import Failed
from sigchain.core.validate.verdict import Status, Verdict
from sigchain.findings import Finding, Severity

Ede = tuple[int, str]  # (INFO-CODE, EXTRA-TEXT)

OTHER, STALE, BOGUS, NO_REACHABLE_AUTHORITY, PROHIBITED = 0, 3, 6, 22, 18
RRSIGS_MISSING, STALE_NXDOMAIN, NOT_AUTHORITATIVE, NETWORK_ERROR, POLICY = 10, 19, 20, 23, 28
INSECURE_INFO = (1, 2, 27)  # unsupported algorithm / digest, NSEC3 iterations: insecure

# Where the resolver's code differs from the finding's: a DS that matches no key is reported
# as "DNSSEC Bogus" naming the mismatch (the wording), as the key set itself is there.
_CODE = {"DS_NO_MATCHING_DNSKEY": BOGUS}
MAX_TEXT = 200  # bytes of EXTRA-TEXT: enough to name the cause, small enough for UDP


def _text(f: Finding) -> str:
    if f.code == "DS_NO_MATCHING_DNSKEY":
        records = f.params.get("records")
        what = ", ".join(map(str, records)) if isinstance(records, list) else str(records)
        text = f"{f.params.get('source')} for {f.params.get('zone')} matches no DNSKEY ({what})"
    else:
        where = f"{f.name} {f.rdtype}" if f.rdtype else (f.name or "")
        text = f"{where}: {f.message}" if where and (f.name or "") not in f.message else f.message
    return text.encode()[:MAX_TEXT].decode(errors="ignore")


def finding_ede(f: Finding) -> Ede | None:
    code = _CODE.get(f.code, f.ede)
    return None if code is None else (code, _text(f))


def verdict_ede(verdict: Verdict) -> tuple[Ede, ...]:
    """Bogus: the codes of its errors (the first cause first); insecure: the informational
    codes saying why it is not validated (unsupported algorithm or digest, NSEC3 iterations);
    secure: none."""
    if verdict.status is Status.BOGUS:
        chosen: Iterable[Finding] = [f for f in verdict.findings if f.severity is Severity.ERROR]
        out = _unique(finding_ede(f) for f in chosen)
        return out or ((BOGUS, "validation failed"),)
    if verdict.status is Status.INSECURE:
        return _unique(e for f in verdict.findings if (e := finding_ede(f)) and e[0] in INSECURE_INFO)
    return ()


def failure_ede(failed: Failed) -> tuple[Ede, ...]:
    """A resolution that found no answer: no server answered (22), or servers answered with
    errors or nonsense (23), with the reason as text."""
    code = NO_REACHABLE_AUTHORITY if failed.unreachable else NETWORK_ERROR
    return ((code, failed.reason.encode()[:MAX_TEXT].decode(errors="ignore")),)


def _unique(edes: Iterable[Ede | None]) -> tuple[Ede, ...]:
    seen: dict[int, Ede] = {}
    for e in edes:
        if e is not None and e[0] not in seen:
            seen[e[0]] = e
    return tuple(seen.values())
