"""One worker thread for all model work, and jobs that run on it one step at a time.

PyTorch already uses every core for one image, so running two users' images at once only makes both
slower (and doubles the memory): every model call goes through :class:`ModelWorker`, a FIFO served by one
thread. Long work (a folder of photos, a video) is a :class:`Job` whose steps (one photo, one frame) are
queued one at a time, so a click on another page is answered between two photos, not after all of them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import PersamError

log = logging.getLogger("persam.app")


class Busy(PersamError):
    """The queue is full: the caller should try again shortly (HTTP 503)."""


class ModelWorker:
    """A FIFO of model tasks served by one thread; at most ``max_queue`` tasks wait."""

    def __init__(self, max_queue: int = 64) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="persam-model")
        self._lock = threading.Lock()
        self._waiting = 0
        self.max_queue = max_queue
        self.tasks_done = 0

    @property
    def queued(self) -> int:
        """Tasks submitted and not yet finished (the running one included)."""
        return self._waiting

    def submit(self, fn: Callable[..., Any], *args: Any, force: bool = False) -> Future:
        """Queue ``fn(*args)``; :class:`Busy` when the queue is full (``force``: queue anyway, for clean-up)."""
        with self._lock:
            if self._waiting >= self.max_queue and not force:
                raise Busy("the server is busy; try again in a moment")
            self._waiting += 1

        def task() -> Any:
            try:
                return fn(*args)
            finally:
                with self._lock:
                    self._waiting -= 1
                    self.tasks_done += 1

        return self._pool.submit(task)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Await ``fn(*args)`` on the worker without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class Job:
    """Long work shown with progress: ``status`` is queued, running, done, failed or cancelled."""

    kind: str
    total: int = 0
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    status: str = "queued"
    done: int = 0
    message: str = ""
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    cancelled: bool = False

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "status": self.status, "done": self.done, "total": self.total,
                "message": self.message, "error": self.error,
                "seconds": round((self.finished or time.time()) - self.started, 2)}


def start_job(worker: ModelWorker, job: Job, steps: Iterator[str], on_end: Callable[[Job], None] | None = None) -> None:
    """Run ``steps`` (each ``next`` is one unit of work that returns a progress message) on the worker.

    Every step is queued anew behind what others queued meanwhile. A :class:`PersamError` ends the job
    with its one-line message; any other exception with a short "internal error" (logged in full).
    """

    def finish(status: str, error: str | None = None) -> None:
        job.status, job.error, job.finished = status, error, time.time()
        try:
            steps.close()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - closing must never hide the real outcome
            log.exception("closing job %s", job.kind)
        if on_end is not None:
            on_end(job)

    def step() -> None:
        if job.cancelled:
            finish("cancelled")
            return
        job.status = "running"
        try:
            job.message = next(steps)
            job.done += 1
        except StopIteration:
            finish("done")
            return
        except PersamError as exc:
            finish("failed", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - the server stays up; the user sees one line
            if job.cancelled:  # its workspace went while it wrote there
                finish("cancelled")
                return
            log.exception("job %s failed", job.kind)
            finish("failed", f"internal error ({type(exc).__name__}); see the server's log")
            return
        worker.submit(step, force=True)

    worker.submit(step, force=True)
