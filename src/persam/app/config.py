"""The app's limits, in one place: what a request may send and how long a user's files are kept."""

from __future__ import annotations

from dataclasses import dataclass, field

MB = 1024 * 1024


@dataclass(frozen=True)
class AppConfig:
    """Limits and safety settings of ``persam app`` (every one has a safe default for a laptop).

    Uploads larger than ``max_upload_bytes`` (a photo, a mask, a concept) or ``max_video_bytes`` (a video) are
    refused before they are read in full; photos and frames with more than ``max_pixels`` pixels are refused
    before they are decoded (decompression bombs). A user's workspace is deleted after ``workspace_ttl_s``
    seconds without a request; API concepts after ``concept_ttl_s``. At most ``max_queue`` model tasks wait
    at once (more: 503, try again), so a burst of requests queues instead of oversubscribing the CPU.
    """

    max_upload_bytes: int = 25 * MB
    max_video_bytes: int = 200 * MB
    max_pixels: int = 40_000_000
    max_video_frames: int = 3000
    max_targets: int = 500  # photos per workspace
    max_workspaces: int = 64
    max_concepts: int = 256
    workspace_ttl_s: float = 3600.0
    concept_ttl_s: float = 24 * 3600.0
    max_queue: int = 64
    sweep_every_s: float = 60.0
    allowed_hosts: tuple[str, ...] = field(default=("127.0.0.1", "localhost", "::1"))  # "*": any (DNS rebinding)
    root: str | None = None  # where workspaces live (default: a new temporary folder, removed at shutdown)
