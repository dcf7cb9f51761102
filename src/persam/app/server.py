"""The web app and HTTP API: FastAPI routes, a thin shell over the library.

Personalizing is :meth:`PerSAM.from_embeddings` on the reference's cached embedding, photos go through
:class:`persam.runs.ImageRun`, exports through :func:`persam.exports.write_exports` and videos through
:class:`persam.runs.VideoRun`; the app only moves files in and out of a user's workspace and queues
every model call on the one :class:`~persam.app.jobs.ModelWorker`.

This module holds the state every request shares (:class:`PersamApp`) and :func:`create_app`, which puts
the app together: the page at ``/``, the page's routes ``/api/workspaces/...``
(:mod:`~persam.app.page_routes`), the API for programs ``/api/concepts/...`` and ``/api/health``
(:mod:`~persam.app.api_routes`, OpenAPI docs at ``/docs``), error replies and the :class:`~persam.app.guard.Guard`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..errors import InputError, PersamError
from .api_routes import api_router
from .concepts import ConceptStore
from .config import MB, AppConfig
from .guard import Guard
from .imaging import mask_preview
from .jobs import Busy, Job, ModelWorker
from .page_routes import page_router
from .uploads import UploadError
from .workspace import Canvas, NotFound, Workspace, Workspaces

log = logging.getLogger("persam.app")
STATIC = Path(__file__).parent / "static"


# ------------------------------------------------------------------------------------------ the app
class PersamApp:
    """The state shared by all requests: one model, one worker, the workspaces and API concepts."""

    def __init__(self, sam, config: AppConfig) -> None:
        from ..predictor import SamPredictor

        self.sam = sam
        self.config = config
        self.predictor = SamPredictor(sam)
        self.worker = ModelWorker(config.max_queue)
        self._own_root = config.root is None
        self.root = Path(config.root or tempfile.mkdtemp(prefix="persam-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.workspaces = Workspaces(self.root / "workspaces", config.workspace_ttl_s, config.max_workspaces)
        self.workspaces.root.mkdir(exist_ok=True)
        self.concepts = ConceptStore(self.root / "concepts", config.concept_ttl_s, config.max_concepts)
        self.started = time.time()
        self.limits = {"max_upload_mb": config.max_upload_bytes // MB, "max_video_mb": config.max_video_bytes // MB,
                       "max_megapixels": config.max_pixels / 1e6, "max_targets": config.max_targets}

    def limit_for(self, path: str) -> int:
        """Largest upload per route: a video, two images (photo and mask), or one file."""
        if path.endswith("/video"):
            return self.config.max_video_bytes
        if path == "/api/concepts":
            return 2 * self.config.max_upload_bytes
        return self.config.max_upload_bytes

    def close(self) -> None:
        self.workspaces.clear()
        self.worker.shutdown()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # ---------------------------------------------------------------- model work (runs on the worker)
    def encode_canvas(self, ws: Workspace, slot: str, canvas: Canvas, rgb: np.ndarray, guess: bool) -> bytes | None:
        """Encode a photo the user will click on (once); for a video's first frame, guess the mask."""
        canvas.embedding = self.predictor.encode(rgb)
        canvas.rgb = rgb
        if ws.closed:
            return None
        ws.canvases[slot] = canvas
        if guess and ws.persam is not None:
            from ..album import AlbumSegmenter

            findings = AlbumSegmenter(ws.persam).segment_embedding(canvas.embedding, rgb)
            if findings.present:
                canvas.mask = findings.mask
                return mask_preview(canvas.mask)
        return None

    def prompt(self, canvas: Canvas, points: list[tuple[float, float, int]], box) -> np.ndarray:
        from ..prompts import prompt_mask

        return prompt_mask(self.predictor, canvas.embedding, points, box)

    def personalize(self, ws: Workspace, method: str) -> dict:
        from ..method import PerSAM
        from ..settings import Settings

        canvas = ws.canvas("reference")
        if canvas.mask is None or not canvas.mask.any():
            raise InputError("mark the object on the photo first (click on it, or drag a box around it)")
        start = time.perf_counter()
        persam = PerSAM.from_embeddings(self.predictor, [canvas.embedding], [canvas.mask],
                                        Settings.for_method(method), [canvas.name],
                                        images=[canvas.rgb] if canvas.rgb is not None else None)
        persam.save(ws.concept_path)
        with ws.lock:
            ws.persam = persam
            ws.concept_version += 1
        return {"method": method, "fit_seconds": round(persam.fit_seconds, 3),
                "seconds": round(time.perf_counter() - start, 3), "reference_score": persam.reference_score}

    def exclude(self, ws: Workspace, target) -> dict:
        """The object found in ``target`` (a photo of the workspace) is not the user's: a negative example of
        the workspace's concept, saved; the results are redone with it."""
        persam = ws.persam
        persam.exclude(target.path, name=target.name)
        persam.save(ws.concept_path)
        with ws.lock:
            ws.concept_version += 1
        return {"negatives": [n.name for n in persam.negatives]}

    # ---------------------------------------------------------------- jobs
    def segment_steps(self, ws: Workspace, job: Job):
        """One step per photo: an ImageRun over the workspace's targets into its results folder."""
        from ..album import AlbumSegmenter
        from ..runs import ImageDone, ImageRun

        persam, version = ws.persam, ws.concept_version
        with ImageRun([ws.targets_dir], ws.results_dir, overwrite=ws.results_version != version) as run:
            ws.results_version = version
            job.total = len(run) + 1  # the photos, then the album check
            segmenter = AlbumSegmenter(persam)
            for event in run.run(segmenter):
                name = event.source.name
                yield f"{name}: {'done' if isinstance(event, ImageDone) else event.message}"
            checked = run.check_album(segmenter)  # the last step: a photo looked at against the whole album
            yield (f"album check: {len(checked.turned_absent)} photo(s) much less like it than its best ones, "
                   "absent" if checked.turned_absent else "album check: no change")

    def video_steps(self, ws: Workspace, job: Job):
        """One step per frame: a VideoRun from the first frame's mask, with an H.264 preview."""
        from ..io import save_mask
        from ..runs import VideoRun

        canvas = ws.canvas("video")
        mask_path = ws.dir / "video" / "first_frame_mask.png"
        save_mask(mask_path, canvas.mask)
        out = ws.dir / "video" / "masks"
        with VideoRun(ws.video, [mask_path], out, preview=ws.dir / "video" / "preview.mp4", overwrite=True) as run:
            job.total = run.todo
            for done in run.run(sam=self.sam, progress=False):
                yield f"frame {done.frame.index + 1} of {job.total}"


def create_app(sam, config: AppConfig | None = None) -> Guard:
    """The ASGI app around one loaded ``sam`` (every request shares it). Serve it with uvicorn."""
    config = config or AppConfig()
    state = PersamApp(sam, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async def sweeper() -> None:
            while True:
                await asyncio.sleep(config.sweep_every_s)
                state.workspaces.sweep()
                state.concepts.sweep()

        task = asyncio.create_task(sweeper())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            state.close()

    app = FastAPI(title="persam", version=__version__, lifespan=lifespan,
                  description="One-shot personalized segmentation: show one photo of your object, find it in "
                              "others. The page is at `/`; programs use `/api/concepts` and `/api/health`.")
    app.state.persam = state

    @app.exception_handler(PersamError)
    async def persam_error(request: Request, exc: PersamError) -> JSONResponse:
        if isinstance(exc, UploadError):
            status = exc.status
        elif isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, Busy):
            status = 503
        else:
            status = 422
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=status)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server's log"},
                            status_code=500)

    # ------------------------------------------------------------------ the page
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.include_router(api_router(state))
    app.include_router(page_router(state))
    return Guard(app, state.limit_for, config.allowed_hosts)
