"""Per-user workspaces: a temporary folder and the state of one page, behind an unguessable id.

Every file a user uploads or the app writes lives under the workspace's folder, under a name the server
made; requests name things only by ids that map to those names, so no request path ever reaches the file
system. A workspace goes when its page says goodbye (DELETE / ``sendBeacon``), after ``ttl`` seconds
without a request, or when the server stops.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import PersamError
from .jobs import Job


class NotFound(PersamError):
    """An id that names nothing (any more): HTTP 404."""


@dataclass
class Canvas:
    """A photo the user marks with clicks or a box: the reference, or a video's first frame.

    Its embedding is computed once, when the photo arrives, so every click only runs the light decoder.
    """

    path: Path  # the photo as uploaded (server-made name)
    preview: Path  # a JPEG at most 1600 px wide, what the page shows
    name: str  # the user's file name, for display only
    width: int
    height: int
    embedding: object = None  # persam.predictor.ImageEmbedding
    rgb: np.ndarray | None = None  # the pixels it was encoded from: the concept's colours and outline level
    mask: np.ndarray | None = None  # HxW bool: SAM's mask from the last prompt (or persam's guess)
    prompt: dict = field(default_factory=dict)


@dataclass
class Target:
    """One uploaded target photo: its server-made file and its output stem in the results folder."""

    id: str
    name: str  # the user's file name, for display only
    path: Path


class Workspace:
    """One user's files and state. Use :attr:`lock` around changes made outside the model worker."""

    def __init__(self, root: Path) -> None:
        self.id = secrets.token_urlsafe(18)
        self.dir = root / self.id
        for sub in ("uploads/targets", "results", "video"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.last_used = time.monotonic()
        self.closed = False
        self.canvases: dict[str, Canvas] = {}  # "reference", "video"
        self.persam = None  # the personalization, once made
        self.concept_version = 0  # bumped by every personalization: results of an older one are redone
        self.results_version = 0  # the concept version the results folder holds
        self.targets: dict[str, Target] = {}
        self.jobs: dict[str, Job] = {}
        self.video: Path | None = None
        self.video_frames = 0
        self.video_name = ""
        self._counter = 0

    @property
    def targets_dir(self) -> Path:
        return self.dir / "uploads" / "targets"

    @property
    def results_dir(self) -> Path:
        return self.dir / "results"

    @property
    def concept_path(self) -> Path:
        return self.dir / "concept.persam"

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def next_number(self) -> int:
        with self.lock:
            self._counter += 1
            return self._counter

    def add_job(self, job: Job) -> Job:
        with self.lock:
            self.jobs = {k: j for k, j in self.jobs.items() if j.active or j.finished is None
                         or time.time() - j.finished < 600}  # forget old finished jobs
            self.jobs[job.id] = job
        return job

    def active_job(self, kind: str) -> Job | None:
        return next((j for j in self.jobs.values() if j.kind == kind and j.active), None)

    def canvas(self, slot: str) -> Canvas:
        canvas = self.canvases.get(slot)
        if canvas is None:
            raise NotFound("upload the photo first" if slot == "reference" else "upload a video first")
        return canvas

    def close(self) -> None:
        """Stop its jobs (they end at their next step) and forget its state; the folder goes separately."""
        self.closed = True
        for job in self.jobs.values():
            job.cancelled = True
        self.canvases.clear()
        self.persam = None


class Workspaces:
    """All live workspaces; ids are unguessable (``secrets.token_urlsafe``), idle ones expire."""

    def __init__(self, root: Path, ttl: float, limit: int) -> None:
        self.root = root
        self.ttl = ttl
        self.limit = limit
        self._items: dict[str, Workspace] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def create(self) -> Workspace:
        self.sweep()
        with self._lock:
            if len(self._items) >= self.limit:
                oldest = min(self._items.values(), key=lambda w: w.last_used)
                if oldest.active_job("segment") or oldest.active_job("video"):
                    raise PersamError("too many people are using this app right now; try again later")
                self._drop(oldest)
            ws = Workspace(self.root)
            self._items[ws.id] = ws
        return ws

    def get(self, wid: str) -> Workspace:
        ws = self._items.get(wid)
        if ws is None or ws.closed:
            raise NotFound("this session has expired or was closed; reload the page to start again")
        ws.touch()
        return ws

    def delete(self, wid: str) -> bool:
        with self._lock:
            ws = self._items.get(wid)
            if ws is None:
                return False
            self._drop(ws)
        return True

    def sweep(self) -> int:
        """Delete workspaces idle for longer than the time-out; returns how many went."""
        now = time.monotonic()
        with self._lock:
            old = [w for w in self._items.values() if now - w.last_used > self.ttl]
            for ws in old:
                self._drop(ws)
        return len(old)

    def clear(self) -> None:
        with self._lock:
            for ws in list(self._items.values()):
                self._drop(ws)

    def _drop(self, ws: Workspace) -> None:
        self._items.pop(ws.id, None)
        ws.close()
        removing = ws.dir.with_name(ws.dir.name + ".gone")
        try:  # renamed at once (nothing can write there again), removed in the background
            ws.dir.rename(removing)
        except OSError:
            removing = ws.dir
        threading.Thread(target=shutil.rmtree, args=(removing,), kwargs={"ignore_errors": True},
                         daemon=True).start()
