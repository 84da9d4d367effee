"""The building blocks of the OpenAPI document's operations (answers, the owner
scope, the job id, the /v1 security and common answers), and the paths of the
actions on one job (``exportd.api.job_actions``): retry and cancel."""

from __future__ import annotations

from typing import Any

from exportd import limits
from exportd.api.openapi_components import bounded, param, ref


def json_answer(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    """An answer with a JSON body of ``schema`` (``extra``: headers and the like)."""
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def error_answer(description: str) -> dict[str, Any]:
    """An error answer: the ``Error`` schema, described for this status."""
    return json_answer(ref("Error"), description)


OWNER = bounded(limits.OWNER_MAX_BYTES)
_ONE_OWNER = " Given more than once, every value must be the same owner (else 400)."
SCOPE_HEADER = param(
    "X-Exportd-Owner",
    "header",
    OWNER,
    "Act for this owner only: other owners' jobs are answered 404." + _ONE_OWNER,
)
SCOPE_QUERY = param(
    "owner_scope",
    "query",
    OWNER,
    "The owner scope, for callers that cannot set a header." + _ONE_OWNER,
)
JOB_ID = param("id", "path", {"type": "string", "format": "uuid"})
SCOPED = [SCOPE_HEADER, SCOPE_QUERY]

UNAUTHORIZED = error_answer("No valid bearer token.")
UNAVAILABLE = error_answer("The database or the bucket does not answer; retry after Retry-After.")
NOT_FOUND = error_answer("No such job (or another owner's, under an owner scope).")
INVALID = error_answer("The request is invalid; `errors` lists every problem.")


def v1(operation: dict[str, Any], *statuses: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A /v1 operation: bearer security, and 401 and 503 besides ``statuses``."""
    responses = {"401": UNAUTHORIZED, "503": UNAVAILABLE, **dict(statuses)}
    return {**operation, "security": [{"bearer": []}], "responses": responses}


JOB_ACTION_PATHS: dict[str, Any] = {
    "/v1/jobs/{id}/retry": {
        "post": v1(
            {
                "summary": "Run a failed or cancelled job again: pending now, its "
                "attempts reset, max_attempts unchanged, earlier runs kept.",
                "parameters": [JOB_ID, *SCOPED],
            },
            (
                "202",
                json_answer(
                    ref("Job"),
                    "Pending again; `runs` lists the attempts so far.",
                    headers={"Location": {"schema": {"type": "string"}}},
                ),
            ),
            ("400", INVALID),
            ("404", NOT_FOUND),
            (
                "409",
                error_answer(
                    "Not failed or cancelled (`state` says what it is), or its "
                    "dedupe_key has a live job (`duplicate_id`)."
                ),
            ),
        ),
    },
    "/v1/jobs/{id}/cancel": {
        "post": v1(
            {
                "summary": "Cancel a pending or processing job, and nothing else: "
                "a job that has already ended is left as it is (409).",
                "parameters": [JOB_ID, *SCOPED],
            },
            ("200", json_answer(ref("Job"), "Cancelled.")),
            ("400", INVALID),
            ("404", NOT_FOUND),
            (
                "409",
                error_answer(
                    "Completed, failed, cancelled or expired (`state` says "
                    "which): nothing was changed; see `job`."
                ),
            ),
        ),
    },
}
