"""The routes the web page uses: ``/api/workspaces/...`` (OpenAPI tag "page").

A workspace holds one user's reference photo, the photos to search, their results and a video; every model
call goes through the app's one worker (:class:`~persam.app.server.PersamApp`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse, Response

from ..errors import InputError, PersamError
from .bodies import PersonalizeBody, PromptBody
from .imaging import data_url, mask_preview, save_preview
from .jobs import Job, start_job
from .uploads import (
    UploadError,
    box_from,
    check_video,
    display_name,
    points_from,
    read_image_upload,
    read_upload,
    safe_stem,
)
from .workspace import Canvas, NotFound, Target, Workspace

if TYPE_CHECKING:
    from .server import PersamApp

log = logging.getLogger("persam.app")


def _records(ws: Workspace) -> dict[str, dict]:
    from ..io import read_jsonl

    return {r["mask"]: r for r in read_jsonl(ws.results_dir / "results.jsonl") if isinstance(r.get("mask"), str)}


def _build_zip(ws: Workspace) -> Path:
    """Exports (COCO, cut-outs, report) of the results folder, zipped with masks, overlays and the concept."""
    from ..exports import write_exports
    from ..io import iter_jsonl

    with ws.lock:
        write_exports(ws.results_dir, ["coco", "cutouts", "report"], notice=lambda m: log.info("%s", m))
        names = {t.path.name: t.name for t in ws.targets.values()}
        out = ws.dir / "persam-results.zip"
        tmp = out.with_suffix(".zip.part")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=3) as zf:
            for path in sorted(ws.results_dir.rglob("*")):
                rel = path.relative_to(ws.results_dir)
                hidden = any(part.startswith(".") for part in rel.parts)  # also .persam-check/: run state
                if not path.is_file() or hidden or rel.name == "results.jsonl":
                    continue
                kind = zipfile.ZIP_STORED if path.suffix in (".jpg", ".png") else zipfile.ZIP_DEFLATED
                zf.write(path, f"persam-results/{rel.as_posix()}", compress_type=kind)
            lines = []
            for record in iter_jsonl(ws.results_dir / "results.jsonl"):  # the user's names, not server paths
                record["image"] = names.get(Path(str(record.get("image", ""))).name, record.get("image"))
                lines.append(json.dumps(record))
            zf.writestr("persam-results/results.jsonl", "\n".join(lines) + "\n")
            if ws.persam is not None and ws.concept_path.is_file():
                zf.write(ws.concept_path, "persam-results/concept.persam")
        tmp.replace(out)
    return out


def page_router(state: PersamApp) -> APIRouter:
    """The page's routes over ``state`` (its workspaces, worker and limits)."""
    config = state.config
    router = APIRouter()

    # ------------------------------------------------------------------ reference photo, targets and results
    @router.post("/api/workspaces", tags=["page"], status_code=201)
    async def new_workspace() -> dict:
        ws = state.workspaces.create()
        return {"id": ws.id, "limits": state.limits}

    @router.delete("/api/workspaces/{wid}", tags=["page"], status_code=204)
    async def delete_workspace(wid: str) -> Response:
        state.workspaces.delete(wid)
        return Response(status_code=204)

    @router.post("/api/workspaces/{wid}/delete", tags=["page"], status_code=204)
    async def delete_workspace_beacon(wid: str) -> Response:
        """The same as DELETE, for ``navigator.sendBeacon`` (which can only POST) when the page closes."""
        state.workspaces.delete(wid)
        return Response(status_code=204)

    @router.post("/api/workspaces/{wid}/reference", tags=["page"])
    async def upload_reference(wid: str, file: Annotated[UploadFile, File()]) -> dict:
        ws = state.workspaces.get(wid)
        name = display_name(file.filename)
        data, img = await read_image_upload(file, name, config)
        n = ws.next_number()
        path = ws.dir / "uploads" / f"reference-{n}{img.suffix}"
        preview = ws.dir / "uploads" / f"reference-{n}-preview.jpg"
        path.write_bytes(data)
        await asyncio.to_thread(save_preview, img.rgb, preview)
        canvas = Canvas(path, preview, name, img.width, img.height)
        start = time.perf_counter()
        await state.worker.run(state.encode_canvas, ws, "reference", canvas, img.rgb, False)
        return {"name": name, "width": img.width, "height": img.height,
                "image": f"/api/workspaces/{wid}/canvas/reference/image?v={n}",
                "encode_seconds": round(time.perf_counter() - start, 3)}

    @router.get("/api/workspaces/{wid}/canvas/{slot}/image", tags=["page"])
    async def canvas_image(wid: str, slot: Literal["reference", "video"]) -> FileResponse:
        canvas = state.workspaces.get(wid).canvas(slot)
        return FileResponse(canvas.preview, media_type="image/jpeg")

    @router.post("/api/workspaces/{wid}/canvas/{slot}/prompt", tags=["page"])
    async def canvas_prompt(wid: str, slot: Literal["reference", "video"], body: PromptBody) -> dict:
        """SAM's mask from clicks and/or a box on the reference (or the video's first frame): decoder only."""
        from ..prompts import check_prompt

        ws = state.workspaces.get(wid)
        canvas = ws.canvas(slot)
        points, box = points_from(body.points), box_from(body.box)
        if not points and box is None:
            canvas.mask = None
            return {"area": 0, "mask": None, "seconds": 0.0}
        if not any(label == 1 for _, _, label in points) and box is None:
            raise InputError("click on the object too (a background click alone does not say what to find)")
        check_prompt(points, box, (canvas.height, canvas.width), canvas.name)
        start = time.perf_counter()
        mask = await state.worker.run(state.prompt, canvas, points, box)
        canvas.mask, canvas.prompt = mask, {"points": body.points, "box": body.box}
        seconds = time.perf_counter() - start
        png = await asyncio.to_thread(mask_preview, mask)
        return {"area": int(mask.sum()), "mask": data_url(png) if mask.any() else None,
                "seconds": round(seconds, 3)}

    @router.post("/api/workspaces/{wid}/personalize", tags=["page"])
    async def personalize(wid: str, body: PersonalizeBody | None = None) -> dict:
        ws = state.workspaces.get(wid)
        if ws.active_job("segment"):
            raise PersamError("wait until the photos being searched are done, then personalize again")
        out = await state.worker.run(state.personalize, ws, (body or PersonalizeBody()).method)
        return out | {"concept": f"/api/workspaces/{wid}/concept.persam"}

    @router.get("/api/workspaces/{wid}/concept.persam", tags=["page"])
    async def workspace_concept(wid: str) -> FileResponse:
        ws = state.workspaces.get(wid)
        if ws.persam is None:
            raise NotFound("personalize first")
        stem = safe_stem(ws.canvas("reference").name, "object") if "reference" in ws.canvases else "object"
        return FileResponse(ws.concept_path, media_type="application/octet-stream", filename=f"{stem}.persam")

    @router.post("/api/workspaces/{wid}/targets", tags=["page"], status_code=201)
    async def upload_target(wid: str, file: Annotated[UploadFile, File()]) -> dict:
        ws = state.workspaces.get(wid)
        name = display_name(file.filename)
        data, img = await read_image_upload(file, name, config)
        with ws.lock:
            if len(ws.targets) >= config.max_targets:
                raise UploadError(413, f"at most {config.max_targets} photos per session")
            taken = {t.path.stem.lower() for t in ws.targets.values()}
            stem, k = safe_stem(name), 2
            base = stem
            while stem.lower() in taken:
                stem, k = f"{base}-{k}", k + 1
            target = Target(f"t{ws.next_number()}", name, ws.targets_dir / f"{stem}{img.suffix}")
            target.path.write_bytes(data)
            ws.targets[target.id] = target
        return {"id": target.id, "name": name, "width": img.width, "height": img.height}

    @router.post("/api/workspaces/{wid}/segment", tags=["page"], status_code=202)
    async def segment_targets(wid: str) -> dict:
        ws = state.workspaces.get(wid)
        if ws.persam is None:
            raise InputError("personalize first (mark the object on your photo, then press Personalize)")
        if not ws.targets:
            raise InputError("add some photos to search first")
        running = ws.active_job("segment")
        if running:
            return running.to_dict()
        job = ws.add_job(Job("segment"))
        start_job(state.worker, job, state.segment_steps(ws, job))
        return job.to_dict()

    @router.post("/api/workspaces/{wid}/targets/{tid}/exclude", tags=["page"])
    async def exclude_target(wid: str, tid: str) -> dict:
        """"Not my object": what was found in this photo becomes a negative example of the concept; search
        the photos again to see the change."""
        ws = state.workspaces.get(wid)
        target = ws.targets.get(tid)
        if target is None:
            raise NotFound("no such photo")
        if ws.persam is None:
            raise InputError("personalize first (mark the object on your photo, then press Personalize)")
        if ws.active_job("segment"):
            raise PersamError("wait until the photos being searched are done, then mark the photo again")
        return await state.worker.run(state.exclude, ws, target)

    @router.get("/api/workspaces/{wid}/jobs/{jid}", tags=["page"])
    async def job_status(wid: str, jid: str) -> dict:
        job = state.workspaces.get(wid).jobs.get(jid)
        if job is None:
            raise NotFound("no such job")
        return job.to_dict()

    @router.get("/api/workspaces/{wid}/results", tags=["page"])
    async def results(wid: str) -> dict:
        ws = state.workspaces.get(wid)
        current = ws.results_version == ws.concept_version
        records = await asyncio.to_thread(_records, ws) if current else {}
        items, pending = [], 0
        for target in list(ws.targets.values()):
            record = records.get(f"{target.path.stem}.png")
            if record is None:
                pending += 1
                continue
            base = f"/api/workspaces/{wid}/targets/{target.id}"
            items.append({"id": target.id, "name": target.name, "score": record.get("score"),
                          "present": bool(record.get("present", True)), "area": record.get("area"),
                          "rejected_by": record.get("rejected_by"),
                          # found, but the album check (persam.album_check) found it much less like the object
                          "unlike_album": (record.get("album_check") or {}).get("present") is False,
                          "overlay": f"{base}/overlay?v={ws.results_version}",
                          "mask": f"{base}/mask?v={ws.results_version}", "photo": f"{base}/photo"})
        return {"items": items, "pending": pending, "personalized": ws.persam is not None}

    @router.get("/api/workspaces/{wid}/targets/{tid}/{kind}", tags=["page"])
    async def target_file(wid: str, tid: str, kind: Literal["overlay", "mask", "photo"]) -> FileResponse:
        ws = state.workspaces.get(wid)
        target = ws.targets.get(tid)
        if target is None:
            raise NotFound("no such photo")
        if kind == "photo":
            path = target.path
        else:
            stem = target.path.stem
            path = ws.results_dir / (f"{stem}_overlay.jpg" if kind == "overlay" else f"{stem}.png")
        if not path.is_file():
            raise NotFound("not segmented yet")
        return FileResponse(path)

    @router.get("/api/workspaces/{wid}/download.zip", tags=["page"])
    async def download_zip(wid: str) -> FileResponse:
        ws = state.workspaces.get(wid)
        if ws.active_job("segment"):
            raise PersamError("wait until the search is done (every photo, then the album check), then download")
        if ws.results_version != ws.concept_version or not (ws.results_dir / "results.jsonl").is_file():
            raise NotFound("no results yet: search some photos first")
        path = await asyncio.to_thread(_build_zip, ws)
        return FileResponse(path, media_type="application/zip", filename="persam-results.zip")

    # ------------------------------------------------------------------ video
    @router.post("/api/workspaces/{wid}/video", tags=["page"])
    async def upload_video(wid: str, file: Annotated[UploadFile, File()]) -> dict:
        from ..frames import FrameSource

        ws = state.workspaces.get(wid)
        if ws.active_job("video"):
            raise PersamError("a video is being tracked; wait for it to finish")
        name = display_name(file.filename, "video")
        data = await read_upload(file, config.max_video_bytes)
        n = ws.next_number()
        raw = ws.dir / "video" / f"upload-{n}.bin"
        raw.write_bytes(data)
        del data
        try:
            checked = await asyncio.to_thread(check_video, raw, name, max_pixels=config.max_pixels)
            path = raw.with_name(f"input-{n}{checked.suffix}")
            raw.replace(path)
        finally:
            raw.unlink(missing_ok=True)

        def first_frame() -> tuple[int, np.ndarray]:
            source = FrameSource(path)
            if len(source) > config.max_video_frames:
                raise UploadError(413, f"{name}: {len(source)} frames; at most {config.max_video_frames}")
            frame = next(iter(source))
            return len(source), frame.image

        try:
            frames, rgb = await asyncio.to_thread(first_frame)
        except InputError as exc:
            path.unlink(missing_ok=True)
            raise UploadError(415, f"{name}: not a video this app can read ({str(exc).split(': ', 1)[-1]})") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        preview = ws.dir / "video" / f"frame0-{n}.jpg"
        await asyncio.to_thread(save_preview, rgb, preview)
        canvas = Canvas(path, preview, name, rgb.shape[1], rgb.shape[0])
        mask_png = await state.worker.run(state.encode_canvas, ws, "video", canvas, rgb, True)
        with ws.lock:
            old, ws.video, ws.video_frames, ws.video_name = ws.video, path, frames, name
        if old is not None and old != path:
            old.unlink(missing_ok=True)
        return {"name": name, "frames": frames, "width": canvas.width, "height": canvas.height,
                "image": f"/api/workspaces/{wid}/canvas/video/image?v={n}",
                "mask": data_url(mask_png) if mask_png else None,
                "guessed": mask_png is not None}

    @router.post("/api/workspaces/{wid}/video/track", tags=["page"], status_code=202)
    async def track_video(wid: str) -> dict:
        ws = state.workspaces.get(wid)
        canvas = ws.canvas("video")
        if canvas.mask is None or not canvas.mask.any():
            raise InputError("mark the object on the video's first frame first")
        running = ws.active_job("video")
        if running:
            return running.to_dict()
        job = ws.add_job(Job("video", total=ws.video_frames))
        start_job(state.worker, job, state.video_steps(ws, job))
        return job.to_dict()

    @router.get("/api/workspaces/{wid}/video/preview.mp4", tags=["page"])
    async def video_preview(wid: str) -> FileResponse:
        ws = state.workspaces.get(wid)
        path = ws.dir / "video" / "preview.mp4"
        if ws.active_job("video") or not path.is_file():
            raise NotFound("no tracked video yet")
        return FileResponse(path, media_type="video/mp4")

    @router.get("/api/workspaces/{wid}/video/masks.zip", tags=["page"])
    async def video_masks(wid: str) -> FileResponse:
        ws = state.workspaces.get(wid)
        folder = ws.dir / "video" / "masks"
        if ws.active_job("video") or not (folder / "results.jsonl").is_file():
            raise NotFound("no tracked video yet")

        def build() -> Path:
            out = ws.dir / "video" / "video-masks.zip"
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=3) as zf:
                for path in sorted(folder.iterdir()):
                    if path.is_file() and not path.name.startswith("."):
                        zf.write(path, f"video-masks/{path.name}")
            return out

        path = await asyncio.to_thread(build)
        return FileResponse(path, media_type="application/zip", filename="video-masks.zip")

    return router
