"""The API for programs: ``/api/concepts...`` and ``/api/health`` (OpenAPI tag "api", docs at ``/docs``).

A concept is made from one photo and its mask (or clicks and/or a box), or uploaded as a ``.persam`` file, and
then searched for in photos one request at a time; every model call goes through the app's one worker.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import TYPE_CHECKING, Annotated

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import FileResponse, Response
from PIL import Image

from .. import __version__
from ..errors import InputError, PersamError
from ..exports.coco import encode_rle
from ..grid import mask_box
from .bodies import MaskFormat, Method
from .imaging import png_bytes
from .uploads import (
    UploadError,
    check_mask,
    display_name,
    parse_box,
    parse_points,
    read_image_upload,
    read_upload,
)
from .workspace import NotFound

if TYPE_CHECKING:
    from .server import PersamApp


def _concept_info(cid: str, persam, extra: dict | None = None) -> dict:
    s = persam.settings
    return {"id": cid, "method": s.method, "model": getattr(persam.predictor.model, "model_name", ""),
            "references": persam.references, "reference_score": persam.reference_score,
            "mask_level": persam.mask_level, "negatives": [n.name for n in persam.negatives],
            "download": f"/api/concepts/{cid}/file", "segment": f"/api/concepts/{cid}/segment",
            "exclude": f"/api/concepts/{cid}/exclude"} | (extra or {})


def api_router(state: PersamApp) -> APIRouter:
    """The API's routes over ``state`` (its model, concepts, worker and limits)."""
    sam, config = state.sam, state.config
    router = APIRouter()

    @router.get("/api/health", tags=["api"])
    async def health() -> dict:
        """Is the server up, which model does it run, how busy is it."""
        return {"status": "ok", "version": __version__, "model": getattr(sam, "model_name", ""),
                "device": str(getattr(sam, "device", "cpu")), "queued": state.worker.queued,
                "workspaces": len(state.workspaces), "concepts": len(state.concepts),
                "uptime_s": round(time.time() - state.started, 1), "limits": state.limits}

    # ------------------------------------------------------------------ concepts
    @router.post("/api/concepts", tags=["api"], status_code=201)
    async def create_concept(
        image: Annotated[UploadFile, File(description="a photo of the object")],
        mask: Annotated[UploadFile | None, File(description="its mask (any non-zero pixel is the object)")] = None,
        points: Annotated[str | None, Form(description="instead of a mask: clicks, JSON [[x, y, label], ...] "
                                                      "(label 1 object, 0 background)")] = None,
        box: Annotated[str | None, Form(description="instead of a mask: a box, JSON [x0, y0, x1, y1]")] = None,
        method: Annotated[Method, Form()] = "persam-f",
    ) -> dict:
        """Personalize from one photo and its mask, or clicks and/or a box; returns the concept's id."""
        from ..method import PerSAM
        from ..prompts import check_prompt, prompt_mask
        from ..settings import Settings

        name = display_name(image.filename)
        clicks, rect = parse_points(points), parse_box(box)
        if mask is not None and (clicks or rect):
            raise UploadError(422, "give either a mask or points/box, not both")
        if mask is None and not any(label == 1 for _, _, label in clicks) and rect is None:
            raise UploadError(422, "give a mask, or points on the object, or a box around it")
        _, img = await read_image_upload(image, name, config)
        ref_mask = None
        if mask is not None:
            mask_data = await read_upload(mask, config.max_upload_bytes)
            ref_mask = await asyncio.to_thread(check_mask, mask_data, display_name(mask.filename, "mask"), img.rgb,
                                               max_bytes=config.max_upload_bytes, max_pixels=config.max_pixels)
        else:
            check_prompt(clicks, rect, (img.height, img.width), name)
        cid, path = state.concepts.new_path()

        def work():
            start = time.perf_counter()
            emb = state.predictor.encode(img.rgb)
            m = ref_mask if ref_mask is not None else prompt_mask(state.predictor, emb, clicks, rect)
            if not m.any():
                raise InputError(f"{name}: SAM found no object at these points/box; try others")
            persam = PerSAM.from_embeddings(state.predictor, [emb], [m], Settings.for_method(method), [name])
            persam.save(path)
            return persam, int(m.sum()), time.perf_counter() - start

        persam, area, seconds = await state.worker.run(work)
        state.concepts.add(cid, persam, path, {})
        return _concept_info(cid, persam, {"mask_area": area, "seconds": round(seconds, 3)})

    @router.post("/api/concepts/upload", tags=["api"], status_code=201)
    async def upload_concept(file: Annotated[UploadFile, File(description="a .persam file")]) -> dict:
        """Use a concept saved earlier (``persam fit``, or downloaded from here) made with this server's model."""
        from ..concept import read_concept
        from ..method import PerSAM

        data = await read_upload(file, config.max_upload_bytes)
        cid, path = state.concepts.new_path()
        path.write_bytes(data)
        label = display_name(file.filename, "concept")
        try:
            def load():
                try:
                    meta, arrays = read_concept(path)
                except PersamError as exc:
                    raise UploadError(415, f"{label}: not a persam concept file") from exc
                return PerSAM.from_concept(label, meta, arrays, sam)

            persam = await asyncio.to_thread(load)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        state.concepts.add(cid, persam, path, {})
        return _concept_info(cid, persam)

    @router.get("/api/concepts/{cid}", tags=["api"])
    async def concept_info(cid: str) -> dict:
        return _concept_info(cid, state.concepts.get(cid).persam)

    @router.get("/api/concepts/{cid}/file", tags=["api"])
    async def concept_file(cid: str) -> FileResponse:
        entry = state.concepts.get(cid)
        return FileResponse(entry.path, media_type="application/octet-stream", filename="concept.persam")

    @router.delete("/api/concepts/{cid}", tags=["api"], status_code=204)
    async def delete_concept(cid: str) -> Response:
        if not state.concepts.delete(cid):
            raise NotFound("no concept with this id (unknown, deleted or expired)")
        return Response(status_code=204)

    @router.post("/api/concepts/{cid}/segment", tags=["api"])
    async def segment_image(
        cid: str,
        image: Annotated[UploadFile, File(description="the photo to search")],
        mask_format: Annotated[MaskFormat, Form(description="png (base64), rle (COCO) or both")] = "both",
    ) -> dict:
        """Find the concept in one photo: present?, score, box, and the mask as a PNG (base64) and COCO RLE."""
        from ..album import AlbumSegmenter

        entry = state.concepts.get(cid)
        name = display_name(image.filename)
        _, img = await read_image_upload(image, name, config)  # the bytes are not kept
        findings = await state.worker.run(lambda: AlbumSegmenter(entry.persam).segment(img.rgb))
        mask = findings.mask
        out = {"present": findings.present, "score": round(findings.score, 4), "box": mask_box(mask),
               "area": int(mask.sum()), "width": img.width, "height": img.height,
               "seconds": {k: round(v, 4) for k, v in findings.timings.items()}}
        if mask_format in ("png", "both"):
            png = await asyncio.to_thread(png_bytes, Image.fromarray(mask.astype(np.uint8) * 255))
            out["mask_png"] = base64.b64encode(png).decode("ascii")
        if mask_format in ("rle", "both"):
            out["rle"] = await asyncio.to_thread(encode_rle, mask)
        return out

    @router.post("/api/concepts/{cid}/exclude", tags=["api"])
    async def exclude_photo(
        cid: str,
        image: Annotated[UploadFile, File(description="a photo the concept got wrong")],
    ) -> dict:
        """Teach the concept what it is not: the object it finds in this photo (another dog, a look-alike)
        becomes a negative example, and from then on an object more like it than like the reference is
        absent. The concept's file (``download``) holds it too."""
        entry = state.concepts.get(cid)
        name = display_name(image.filename)
        _, img = await read_image_upload(image, name, config)

        def work() -> None:
            entry.persam.exclude(img.rgb, name=name)
            entry.persam.save(entry.path)

        await state.worker.run(work)
        return _concept_info(cid, entry.persam)

    return router
