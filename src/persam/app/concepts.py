"""Concepts made or uploaded through the HTTP API, each behind an unguessable id.

A concept is small (a target embedding, part features, two weights), so the store keeps the ready
:class:`~persam.method.PerSAM` in memory and its ``.persam`` file on disk for download; both go after
``ttl`` seconds without use, or when more than ``limit`` are held (the least recently used first).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .workspace import NotFound


@dataclass
class StoredConcept:
    id: str
    persam: object  # persam.method.PerSAM
    path: Path  # its .persam file (server-made name)
    info: dict
    last_used: float = field(default_factory=time.monotonic)


class ConceptStore:
    def __init__(self, folder: Path, ttl: float, limit: int) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ttl = ttl
        self.limit = limit
        self._items: dict[str, StoredConcept] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def new_path(self) -> tuple[str, Path]:
        """A fresh id and the file its concept is written to."""
        cid = secrets.token_urlsafe(18)
        return cid, self.folder / f"{cid}.persam"

    def add(self, cid: str, persam: object, path: Path, info: dict) -> StoredConcept:
        self.sweep()
        with self._lock:
            while len(self._items) >= self.limit:
                self._drop(min(self._items.values(), key=lambda c: c.last_used))
            entry = StoredConcept(cid, persam, path, info)
            self._items[cid] = entry
        return entry

    def get(self, cid: str) -> StoredConcept:
        entry = self._items.get(cid)
        if entry is None:
            raise NotFound("no concept with this id (unknown, deleted or expired)")
        entry.last_used = time.monotonic()
        return entry

    def delete(self, cid: str) -> bool:
        with self._lock:
            entry = self._items.get(cid)
            if entry is not None:
                self._drop(entry)
        return entry is not None

    def sweep(self) -> int:
        now = time.monotonic()
        with self._lock:
            old = [c for c in self._items.values() if now - c.last_used > self.ttl]
            for entry in old:
                self._drop(entry)
        return len(old)

    def _drop(self, entry: StoredConcept) -> None:
        self._items.pop(entry.id, None)
        entry.path.unlink(missing_ok=True)
