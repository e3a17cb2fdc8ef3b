"""The one error the service answers with: an HTTP status and a line a person can act on."""

from __future__ import annotations


class ApiError(Exception):
    """Answered as ``{"detail": detail}`` with ``status`` (and ``headers``, if any).

    Raised by the routes, by upload checks (413, 415, 422, 501) and by a job's work (its
    failure is kept on the job and shown by ``GET /v1/jobs/{id}``).
    """

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
