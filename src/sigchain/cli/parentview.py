"""How `sigchain keys checkds` shows a parent check: text lines and JSON."""

from __future__ import annotations

from typing import Any

from sigchain.core.dnssec import timefmt
from sigchain.core.parent.agreement import KeyAtParent
from sigchain.services.parentcheck import CheckResult


def _ds(d: Any) -> str:
    return f"{d.key_tag} {d.algorithm} {d.digest_type} {d.digest.hex().upper()}"


def _where(row: KeyAtParent, since: int | None) -> str:
    state = row.state
    if state == "published":
        return "DS at every parent server" + (
            f" since {timefmt.format_utc(since)}" if since is not None else "")
    if state == "withdrawn":
        return "DS at no parent server"
    if state == "disagree":
        return f"DS at {', '.join(row.present)} only; still missing at {', '.join(row.absent)}"
    return f"DS unknown: no validated answer from {', '.join(row.failed)}"


def checkds_lines(r: CheckResult) -> list[str]:
    a = r.agreement
    lines = [f"zone {a.zone}: parent {r.parent.zone} asked at {len(a.servers)} server(s) "
             "over TCP"]
    for s in a.servers:
        if s.ds is None:
            lines.append(f"  {s.server}: failed: {s.error}")
        else:
            shown = ", ".join(f"{d.key_tag}/{d.algorithm}/{d.digest_type}" for d in s.ds)
            lines.append(f"  {s.server}: DS {shown or 'none'} (validated)")
    recorded = {o.key: o.kind for o in r.changes.record}
    reset = {k for k, _ in r.changes.forget}
    for row in a.keys:
        note = ""
        if row.key.id in recorded:
            note = f"; recorded ({recorded[row.key.id]})"
        elif row.key.id in reset:
            note = "; first-seen time reset"
        lines.append(f"  key {row.key.tag}: {_where(row, r.since.get(row.key.id))}{note}")
    lines.append("  all parent servers agree" if a.agree else
                 "  parent servers do not agree: the roll waits")
    return lines


def checkds_json(r: CheckResult, now: int) -> dict[str, Any]:
    a = r.agreement
    return {
        "zone": a.zone.to_text(), "parent": r.parent.zone.to_text(), "now": now,
        "servers": [{"server": s.server, "ds": None if s.ds is None else [_ds(d) for d in s.ds],
                     "error": s.error or None} for s in a.servers],
        "keys": [{"id": row.key.id, "tag": row.key.tag, "state": row.state,
                  "present": list(row.present), "absent": list(row.absent),
                  "failed": list(row.failed), "since": r.since.get(row.key.id)}
                 for row in a.keys],
        "recorded": [{"key": o.key, "observation": o.kind, "since": o.since}
                     for o in r.changes.record],
        "reset": [{"key": k, "observation": kind} for k, kind in r.changes.forget],
        "agree": a.agree}
