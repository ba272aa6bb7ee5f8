"""Bulk actions by filter: retry, cancel or rescue every run of a workspace matching a filter,
with a dry-run count first and the action as one durable, resumable job (``BulkAction``).

``filters`` checks the operator's filter and finds the runs; ``jobs`` confirms, processes and
recovers the jobs. The page, the API and the CLI call these and nothing else.
"""

from __future__ import annotations

from pipeline.bulk.filters import (
    ELIGIBLE,
    FIELDS,
    BadFilter,
    Preview,
    RunFilter,
    matching,
    parse_action,
    parse_filter,
    preview,
)
from pipeline.bulk.jobs import (
    BulkError,
    CountChanged,
    cancel_bulk_action,
    item_lines,
    job_dict,
    process_chunk,
    progress_line,
    resume_stale,
    send,
    start_bulk_action,
)

__all__ = [
    "ELIGIBLE",
    "FIELDS",
    "BadFilter",
    "BulkError",
    "CountChanged",
    "Preview",
    "RunFilter",
    "cancel_bulk_action",
    "item_lines",
    "job_dict",
    "matching",
    "parse_action",
    "parse_filter",
    "preview",
    "process_chunk",
    "progress_line",
    "resume_stale",
    "send",
    "start_bulk_action",
]
