"""The audit page: the filters of `syncer audit` (person, field, run, connector, outcome,
time), newest first with keyset pagination (syncer/store/audit_pages.py), export as CSV or
JSON Lines (the export `syncer audit --export` writes), and the hash chain's status
(`syncer audit verify`'s check, run when asked: it reads every row)."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO, cast

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from syncer.domain.when import parse_when
from syncer.store.audit import AuditFilter
from syncer.store.audit_archive import EXPORT_FORMATS, export
from syncer.store.audit_pages import audit_page
from syncer.web.deps import AnyUser, render, web_state

router = APIRouter()
PAGE_SIZE = 50
_FIELDS = ("person", "field", "run", "connector", "outcome", "since", "until")


@dataclass(frozen=True)
class Filters:
    values: dict[str, str]
    where: AuditFilter
    problem: str | None

    def query(self) -> str:
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in self.values.items() if v})


def read_filters(request: Request) -> Filters:
    values = {name: request.query_params.get(name, "").strip() for name in _FIELDS}
    times: dict[str, datetime | None] = {"since": None, "until": None}
    problem = None
    for name in times:
        if values[name]:
            try:
                times[name] = parse_when(values[name])
            except argparse.ArgumentTypeError as error:
                problem = f"{name}: {error}"
    where = AuditFilter(person=values["person"] or None, field=values["field"] or None,
                        run_id=values["run"] or None, connector=values["connector"] or None,
                        outcome=values["outcome"] or None, since=times["since"],
                        until=times["until"])
    return Filters(values, where, problem)


def _before(request: Request) -> int | None:
    text = request.query_params.get("before", "")
    return int(text) if text.isdigit() else None


@router.get("/audit")
def audit(request: Request, _user: AnyUser) -> Response:
    filters = read_filters(request)
    page = None if filters.problem else audit_page(
        web_state(request).store.audit_log, filters.where, before=_before(request),
        limit=PAGE_SIZE)
    context = {"page": "audit", "filters": filters, "result": page}
    if request.headers.get("HX-Request") and request.query_params.get("part") == "rows":
        return render(request, "audit_rows.html", context)
    return render(request, "audit.html", context, 400 if filters.problem else 200)


@router.get("/audit/export")
def audit_export(request: Request, _user: AnyUser, format: str = "csv") -> Response:
    if format not in EXPORT_FORMATS:
        raise HTTPException(400, f"format must be one of {', '.join(EXPORT_FORMATS)}")
    filters = read_filters(request)
    if filters.problem:
        raise HTTPException(400, filters.problem)
    # Spooled: a large export goes to a temporary file, not into memory.
    spool = cast(TextIO, tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by _chunks
        max_size=8 << 20, mode="w+", encoding="utf-8", newline=""))
    export(web_state(request).store.audit_log, filters.where, format, spool)
    spool.seek(0)
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(_chunks(spool), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="syncer-audit.{format}"'})


def _chunks(spool: TextIO) -> Iterator[str]:
    try:
        while chunk := spool.read(64 << 10):
            yield chunk
    finally:
        spool.close()


@router.get("/audit/verify")
def audit_verify(request: Request, _user: AnyUser) -> Response:
    report = web_state(request).store.audit_log.verify()
    return render(request, "audit_verify.html", {"report": report})
