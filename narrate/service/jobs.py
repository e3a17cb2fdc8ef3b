"""The service's work queue: bounded admission, a fixed pool of workers, retention.

At most ``concurrency`` jobs run at once and at most ``max_queue`` more wait; a request
beyond that is refused at once (``QueueFull``, answered 503 with ``Retry-After``) instead of
piling up. An admitted job always ends ``done`` or ``failed`` with a status and a one-line
reason. A caller reserves a slot (``reserve``) before storing and checking its upload, so a
full queue costs the caller nothing, and hands the slot back if the upload is refused.

Each job has its own folder under the work directory (mode 0700), named by a random id.
Uploads are deleted as soon as the job ends; results (JSON, WAV) and the job's record are
deleted ``retention_s`` after it ended, by ``sweep``.
"""

from __future__ import annotations

import logging
import math
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from narrate.service.errors import ApiError

log = logging.getLogger("narrate.service")

JobKind = Literal["describe", "ask"]
JobStatus = Literal["queued", "running", "done", "failed"]


class QueueFull(Exception):
    """Every slot is taken; ``retry_after_s`` is an estimate of when one frees up."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the server is busy: try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass
class Job:
    """One request's work: who owns it, where its files are, how it ended."""

    id: str
    owner: str
    kind: JobKind
    directory: Path
    inputs: dict[str, Any] = field(default_factory=dict)  # what the work function needs
    created_s: float = field(default_factory=time.time)
    status: JobStatus = "queued"
    started_s: float | None = None
    finished_s: float | None = None
    result: dict[str, Any] | None = None
    audio_path: Path | None = None
    error_status: int | None = None
    error_detail: str | None = None
    future: Future[Job] = field(default_factory=Future)

    def public(self) -> dict[str, Any]:
        """The job as ``GET /v1/jobs/{id}`` shows it."""
        data: dict[str, Any] = {"id": self.id, "kind": self.kind, "status": self.status}
        if self.result is not None:
            data["result"] = self.result
        if self.status == "failed":
            data["error"] = {"status": self.error_status, "detail": self.error_detail}
        return data


class Slot:
    """A reserved place in the queue: ``start`` it with a job, or ``release`` it."""

    def __init__(self, queue: JobQueue) -> None:
        self._queue = queue
        self._open = True

    def start(self, job: Job) -> Job:
        """Run ``job`` in this slot (queued until a worker is free)."""
        if not self._open:
            raise RuntimeError("slot already used")
        self._open = False
        return self._queue._start(job)

    def release(self) -> None:
        """Give the slot back unused (idempotent)."""
        if self._open:
            self._open = False
            self._queue._release()


Work = Callable[[Job], None]


class JobQueue:
    """Admits, runs and forgets jobs; thread-safe.

    Args:
        work: does a job: fills ``job.result``/``job.audio_path`` or raises ``ApiError``.
        concurrency: jobs running at once.
        max_queue: jobs waiting beyond those running.
        retention_s: seconds a finished job and its files are kept.
        work_dir: the folder job folders go in.
    """

    def __init__(
        self,
        work: Work,
        *,
        concurrency: int,
        max_queue: int,
        retention_s: float,
        work_dir: Path,
    ) -> None:
        self._work = work
        self.concurrency = concurrency
        self.max_queue = max_queue
        self.retention_s = retention_s
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.work_dir.chmod(0o700)
        self._remove_leftovers()
        self._lock = threading.Lock()
        self._admitted = 0  # reserved + queued + running
        self._running = 0
        self._jobs: dict[str, Job] = {}
        self._mean_job_s = 2.0  # moving average of job durations, for Retry-After
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="narrate-job")
        self.completed = 0
        self.failed = 0

    # -- admission -----------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Jobs that may be admitted at once (running + waiting)."""
        return self.concurrency + self.max_queue

    def depth(self) -> tuple[int, int]:
        """(admitted, running) right now."""
        with self._lock:
            return self._admitted, self._running

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free: the backlog over the workers, 1..60."""
        with self._lock:
            waiting = max(0, self._admitted - self.concurrency) + 1
            estimate = self._mean_job_s * waiting / self.concurrency
        return int(min(60, max(1, math.ceil(estimate))))

    def full(self) -> bool:
        """True when a reservation would be refused now."""
        with self._lock:
            return self._admitted >= self.capacity

    def reserve(self) -> Slot:
        """Take a place in the queue.

        Raises:
            QueueFull: every place is taken.
        """
        with self._lock:
            if self._admitted < self.capacity:
                self._admitted += 1
                return Slot(self)
        raise QueueFull(self.retry_after_s())

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def new_job(self, owner: str, kind: JobKind) -> Job:
        """A job with a fresh unguessable id and its own folder (not yet started).

        Args:
            owner: ``Caller.owner`` of the requester.
            kind: ``describe`` or ``ask``.

        Returns:
            The job (its folder exists, mode 0700).
        """
        job_id = secrets.token_urlsafe(18)
        directory = self.work_dir / job_id
        directory.mkdir(mode=0o700)
        return Job(id=job_id, owner=owner, kind=kind, directory=directory)

    def _start(self, job: Job) -> Job:
        with self._lock:
            self._jobs[job.id] = job
        self._pool.submit(self._run, job)
        return job

    # -- running -------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        with self._lock:
            self._running += 1
        job.status, job.started_s = "running", time.time()
        try:
            self._work(job)
            job.status = "done"
        except ApiError as exc:
            job.status, job.error_status, job.error_detail = "failed", exc.status, exc.detail
        except Exception:  # a bug: the reason stays in the server log, the client gets an id
            log.exception("job %s failed", job.id)
            job.status, job.error_status = "failed", 500
            job.error_detail = f"internal error in job {job.id}; the server log has the details"
        finally:
            job.finished_s = time.time()
            self._delete_uploads(job)
            with self._lock:
                self._running -= 1
                self._admitted -= 1
                seconds = job.finished_s - (job.started_s or job.finished_s)
                self._mean_job_s = 0.8 * self._mean_job_s + 0.2 * seconds
                if job.status == "done":
                    self.completed += 1
                else:
                    self.failed += 1
            job.future.set_result(job)

    @staticmethod
    def _delete_uploads(job: Job) -> None:
        for key in ("image", "audio"):
            upload = job.inputs.get(key)
            path = getattr(upload, "path", None)
            if isinstance(path, Path):
                path.unlink(missing_ok=True)

    # -- lookup and retention ------------------------------------------------------------

    def _remove_leftovers(self) -> None:
        """Delete job folders a stopped or crashed server left, once older than retention.

        Younger ones may belong to another server sharing the folder, and are left alone.
        """
        cutoff = time.time() - self.retention_s
        for entry in self.work_dir.iterdir():
            try:
                stale = entry.is_dir() and entry.stat().st_mtime < cutoff
            except OSError:
                continue
            if stale:
                shutil.rmtree(entry, ignore_errors=True)
                log.info("deleted a job folder left over from an earlier run: %s", entry.name)

    def get(self, job_id: str, owner: str) -> Job | None:
        """A job, to its owner only.

        Args:
            job_id: the id from the 202 answer or the result.
            owner: ``Caller.owner`` of the requester.

        Returns:
            The job, or None when there is none or another caller owns it.
        """
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def discard(self, job: Job) -> None:
        """Forget a job that never started and delete its folder."""
        shutil.rmtree(job.directory, ignore_errors=True)

    def sweep(self, now_s: float | None = None) -> int:
        """Delete jobs that ended more than ``retention_s`` ago, with their folders.

        Args:
            now_s: the time to compare with (``time.time()`` by default).

        Returns:
            How many jobs were deleted.
        """
        now_s = time.time() if now_s is None else now_s
        with self._lock:
            expired = [
                job
                for job in self._jobs.values()
                if job.finished_s is not None and now_s - job.finished_s > self.retention_s
            ]
            for job in expired:
                del self._jobs[job.id]
        for job in expired:
            shutil.rmtree(job.directory, ignore_errors=True)
        return len(expired)

    def close(self, *, wait: bool = True) -> None:
        """Stop taking work; with ``wait``, finish every admitted job first."""
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
