"""The HTTP API and the page's endpoints, through FastAPI's TestClient with a tiny random-weight model.

What a hostile or careless client can send: too large, not an image, names that look like paths, ids that
name nothing, malformed JSON, requests from another web site, many requests at once. The server must
answer each with one clear status and message and keep working.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from persam.app import AppConfig, create_app  # noqa: E402

from ..conftest import tiny_sam  # noqa: E402

H, W = 96, 128


def _jpeg(seed: int = 0, size: tuple[int, int] = (H, W)) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    rgb[20:70, 30:100] = (220, 180, 40)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG")
    return buf.getvalue()


def _mask_png() -> bytes:
    mask = np.zeros((H, W), np.uint8)
    mask[20:70, 30:100] = 255
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, "PNG")
    return buf.getvalue()


def _client(tmp_path: Path, **limits) -> TestClient:
    config = AppConfig(allowed_hosts=("testserver",), root=str(tmp_path / "app"), **limits)
    return TestClient(create_app(tiny_sam("vit_t"), config))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with _client(tmp_path_factory.mktemp("api"), max_upload_bytes=1024 * 1024, max_pixels=200_000) as c:
        yield c


@pytest.fixture(scope="module")
def concept(client):
    r = client.post("/api/concepts", files={"image": ("ref.jpg", _jpeg(), "image/jpeg"),
                                            "mask": ("ref.png", _mask_png(), "image/png")})
    assert r.status_code == 201, r.text
    return r.json()


def _detail(r) -> str:
    return r.json()["detail"]


def _wait(client, url: str, job: dict) -> dict:
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = client.get(url + job["id"]).json()
    return job


# ------------------------------------------------------------------------------------------ the API
def test_health(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["model"] == "vit_t" and body["limits"]["max_upload_mb"] == 1
    assert client.get("/docs").status_code == 200
    assert "/api/concepts/{cid}/segment" in client.get("/openapi.json").json()["paths"]


def test_concept_from_mask_segment_and_download(client, concept):
    assert concept["method"] == "persam-f" and concept["mask_area"] == 50 * 70
    r = client.post(f"/api/concepts/{concept['id']}/segment", files={"image": ("t.jpg", _jpeg(1), "image/jpeg")})
    assert r.status_code == 200, r.text
    out = r.json()
    assert {"present", "score", "box", "area", "mask_png", "rle", "width", "height"} <= set(out)
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(out["mask_png"])))) > 0
    assert mask.shape == (H, W) and int(mask.sum()) == out["area"]
    from pycocotools import mask as mask_utils

    rle = {"size": out["rle"]["size"], "counts": out["rle"]["counts"].encode()}
    assert np.array_equal(mask_utils.decode(rle) > 0, mask)
    if out["area"]:
        ys, xs = np.nonzero(mask)
        assert out["box"] == [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
    only_rle = client.post(f"/api/concepts/{concept['id']}/segment", data={"mask_format": "rle"},
                           files={"image": ("t.jpg", _jpeg(1), "image/jpeg")}).json()
    assert "mask_png" not in only_rle and only_rle["rle"] == out["rle"]

    # the .persam file, uploaded again, is a working concept with a new id
    data = client.get(concept["download"]).content
    again = client.post("/api/concepts/upload", files={"file": ("mine.persam", data, "application/octet-stream")})
    assert again.status_code == 201, again.text
    assert again.json()["id"] != concept["id"]
    r2 = client.post(f"/api/concepts/{again.json()['id']}/segment", files={"image": ("t.jpg", _jpeg(1), "image/jpeg")})
    assert r2.json()["rle"] == out["rle"]


def test_exclude_makes_a_negative_example_kept_in_the_concept_file(client):
    r = client.post("/api/concepts", files={"image": ("ref.jpg", _jpeg(), "image/jpeg"),
                                            "mask": ("ref.png", _mask_png(), "image/png")})
    made = r.json()
    assert made["negatives"] == [] and made["exclude"] == f"/api/concepts/{made['id']}/exclude"
    r = client.post(made["exclude"], files={"image": ("../other dog.jpg", _jpeg(0), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.json()["negatives"] == ["other dog.jpg"]  # the display name, never a path
    data = client.get(made["download"]).content
    again = client.post("/api/concepts/upload", files={"file": ("c.persam", data, "application/octet-stream")})
    assert again.json()["negatives"] == ["other dog.jpg"]
    bad = client.post(made["exclude"], files={"image": ("x.jpg", b"not an image", "image/jpeg")})
    assert bad.status_code in (415, 422) and "\n" not in _detail(bad)
    assert client.post("/api/concepts/nope/exclude",
                       files={"image": ("x.jpg", _jpeg(0), "image/jpeg")}).status_code == 404


def test_concept_from_points_and_box(client):
    r = client.post("/api/concepts", data={"points": "[[60, 40, 1], [5, 5, 0]]", "box": "[30, 20, 100, 70]",
                                           "method": "persam"},
                    files={"image": ("ref.jpg", _jpeg(), "image/jpeg")})
    if r.status_code == 422:  # a random-weight SAM may find nothing at the prompt: said in one line
        assert "found no object" in _detail(r)
    else:
        assert r.status_code == 201, r.text
        assert r.json()["method"] == "persam"


def test_unknown_concept_is_404(client):
    for method, url in [("GET", "/api/concepts/nope"), ("GET", "/api/concepts/nope/file"),
                        ("DELETE", "/api/concepts/nope")]:
        r = client.request(method, url)
        assert r.status_code == 404 and "no concept" in _detail(r)
    r = client.post("/api/concepts/nope/segment", files={"image": ("t.jpg", _jpeg(), "image/jpeg")})
    assert r.status_code == 404


def test_deleted_concept_is_gone(client):
    r = client.post("/api/concepts", files={"image": ("ref.jpg", _jpeg(), "image/jpeg"),
                                            "mask": ("ref.png", _mask_png(), "image/png")})
    cid = r.json()["id"]
    assert client.delete(f"/api/concepts/{cid}").status_code == 204
    assert client.get(f"/api/concepts/{cid}").status_code == 404


# ------------------------------------------------------------------------------------------ hostile input
def test_oversize_upload_is_413(client, concept):
    big = b"\xff\xd8" + bytes(1024 * 1024 + 10)
    r = client.post(f"/api/concepts/{concept['id']}/segment", files={"image": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 413 and "too large" in _detail(r)
    # a body larger than any route accepts is refused by its Content-Length, before it is read
    r = client.post("/api/workspaces", content=bytes(3 * 1024 * 1024), headers={"Content-Type": "text/plain"})
    assert r.status_code == 413
    assert client.get("/api/health").status_code == 200


def test_oversize_stream_without_length_is_413(client):
    """A chunked body (no Content-Length) is cut off once it passes the limit, not read to the end."""
    def chunks():
        for _ in range(64):  # 4 MB offered, the limit is 2 MB
            yield bytes(64 * 1024)

    r = client.post("/api/concepts/x/segment", content=chunks(), headers={"Content-Type": "multipart/form-data; "
                                                                          "boundary=zzz"})
    assert r.status_code == 413
    assert client.get("/api/health").status_code == 200


def test_too_many_pixels_is_refused_before_decoding(client, concept):
    buf = io.BytesIO()
    Image.new("L", (1000, 1000)).save(buf, "PNG")  # small file, 1 megapixel (the limit here is 0.2)
    files = {"image": ("bomb.png", buf.getvalue(), "image/png")}
    r = client.post(f"/api/concepts/{concept['id']}/segment", files=files)
    assert r.status_code == 413 and "too many pixels" in _detail(r)


@pytest.mark.parametrize("payload", [b"hello, I am text", b"", b"\x89PNG\r\n\x1a\n broken", b"GIF89a" + bytes(20)])
def test_wrong_type_is_refused(client, concept, payload):
    r = client.post(f"/api/concepts/{concept['id']}/segment", files={"image": ("photo.jpg", payload, "image/jpeg")})
    assert r.status_code in (415, 422), r.text
    assert "photo.jpg" in _detail(r)


def test_not_a_concept_file_is_415(client):
    r = client.post("/api/concepts/upload", files={"file": ("x.persam", b"not a concept at all", "text/plain")})
    assert r.status_code == 415 and "not a persam concept" in _detail(r)


@pytest.mark.parametrize(("data", "message"), [
    ({"points": "not json"}, "not JSON"),
    ({"points": "[[1, 2, 3]]"}, "label"),
    ({"points": '[["a", 2]]'}, "numbers"),
    ({"points": '{"x": 1}'}, "list"),
    ({"box": "[10, 10, 5, 5]"}, "greater"),
    ({"box": "[1, 2]"}, "x0, y0, x1, y1"),
    ({"points": "[[5000, 5, 1]]"}, "outside the image"),
    ({"points": "[[5, 5, 0]]"}, "mask, or points"),
    ({}, "mask, or points"),
])
def test_malformed_prompts_are_422(client, data, message):
    r = client.post("/api/concepts", data=data, files={"image": ("ref.jpg", _jpeg(), "image/jpeg")})
    assert r.status_code == 422, r.text
    assert message in _detail(r)


def test_mask_and_prompt_together_or_wrong_mask(client):
    r = client.post("/api/concepts", data={"points": "[[5, 5, 1]]"},
                    files={"image": ("ref.jpg", _jpeg(), "image/jpeg"), "mask": ("m.png", _mask_png(), "image/png")})
    assert r.status_code == 422 and "not both" in _detail(r)
    empty = io.BytesIO()
    Image.new("L", (W, H)).save(empty, "PNG")
    r = client.post("/api/concepts", files={"image": ("ref.jpg", _jpeg(), "image/jpeg"),
                                            "mask": ("m.png", empty.getvalue(), "image/png")})
    assert r.status_code == 422 and "empty" in _detail(r)


def test_other_sites_and_host_names_are_refused(client):
    r = client.post("/api/workspaces", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.get("/api/health", headers={"Host": "evil.example"})
    assert r.status_code == 421
    assert client.post("/api/workspaces", headers={"Origin": "http://testserver"}).status_code == 201


def test_concurrent_segment_requests(client, concept):
    """Requests from several threads queue on the one model worker and all get the right answer."""
    url = f"/api/concepts/{concept['id']}/segment"
    results: list = [None] * 4
    errors: list = []

    def call(i: int) -> None:
        try:
            results[i] = client.post(url, files={"image": ("t.jpg", _jpeg(i % 2 + 1), "image/jpeg")})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert results[0].json()["rle"] == results[2].json()["rle"]
    assert results[1].json()["rle"] == results[3].json()["rle"]


def test_full_queue_is_503(tmp_path):
    with _client(tmp_path, max_queue=0) as c:
        r = c.post("/api/concepts", files={"image": ("ref.jpg", _jpeg(), "image/jpeg"),
                                           "mask": ("ref.png", _mask_png(), "image/png")})
        assert r.status_code == 503 and "busy" in _detail(r)
        assert c.get("/api/health").status_code == 200


# ------------------------------------------------------------------------------------------ the page's flow
def test_workspace_flow_names_and_cleanup(client):
    state = client.app.app.state.persam
    wid = client.post("/api/workspaces").json()["id"]
    assert len(wid) >= 24
    base = f"/api/workspaces/{wid}"
    r = client.post(f"{base}/reference", files={"file": ("ref.jpg", _jpeg(), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert client.get(r.json()["image"]).headers["content-type"] == "image/jpeg"
    r = client.post(f"{base}/canvas/reference/prompt", json={"points": [[64, 45, 1]], "box": [30, 20, 100, 70]})
    assert r.status_code == 200, r.text
    state.workspaces.get(wid).canvases["reference"].mask = np.zeros((H, W), bool)  # random weights: set it
    state.workspaces.get(wid).canvases["reference"].mask[20:70, 30:100] = True
    assert client.post(f"{base}/personalize", json={"method": "persam-f"}).status_code == 200
    made = state.workspaces.get(wid).persam  # from the photo's pixels too: its colours judge presence
    assert made.presence_colour is not None and made.presence_colour.sum() > 0

    # names that look like paths are display names only; the files get server-made names in the workspace
    for name in ("../../../../tmp/evil.jpg", "..\\..\\win.jpg", "a/b/c.jpg", "c.jpg", "<script>.jpg"):
        r = client.post(f"{base}/targets", files={"file": (name, _jpeg(3), "image/jpeg")})
        assert r.status_code == 201, r.text
    ws = state.workspaces.get(wid)
    names = sorted(t.name for t in ws.targets.values())
    assert names == ["<script>.jpg", "c.jpg", "c.jpg", "evil.jpg", "win.jpg"]
    for target in ws.targets.values():
        assert target.path.parent == ws.targets_dir and target.path.is_file()
    assert sorted(p.name for p in ws.targets_dir.iterdir()) == ["c-2.jpg", "c.jpg", "evil.jpg", "script.jpg",
                                                               "win.jpg"]

    job = client.post(f"{base}/segment").json()
    job = _wait(client, f"{base}/jobs/", job)
    assert job["status"] == "done" and job["done"] == job["total"] == 6, job  # 5 photos, then the album check
    res = client.get(f"{base}/results").json()
    assert res["pending"] == 0 and len(res["items"]) == 5
    item = res["items"][0]
    assert {"score", "present", "overlay", "mask"} <= set(item)
    assert client.get(item["overlay"]).headers["content-type"] == "image/jpeg"
    for bad in (f"{base}/targets/..%2F..%2Fconcept.persam/photo", f"{base}/targets/t999/mask",
                "/api/workspaces/..%2F..%2Fetc/results", "/api/workspaces/nope/results"):
        assert client.get(bad).status_code in (404, 422), bad

    # "not my object" on one photo: a negative example of the workspace's concept, results to redo
    version = ws.concept_version
    tid = res["items"][0]["id"]
    r = client.post(f"{base}/targets/{tid}/exclude")
    assert r.status_code == 200, r.text
    assert r.json()["negatives"] == [ws.targets[tid].name] and ws.concept_version == version + 1
    assert client.post(f"{base}/targets/t999/exclude").status_code == 404
    job = _wait(client, f"{base}/jobs/", client.post(f"{base}/segment").json())
    assert job["status"] == "done" and job["done"] == 6, job
    assert {"rejected_by", "unlike_album"} <= set(client.get(f"{base}/results").json()["items"][0])

    zipped = client.get(f"{base}/download.zip")
    assert zipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as zf:
        names = set(zf.namelist())
        assert {"persam-results/results.jsonl", "persam-results/coco.json", "persam-results/report.html",
                "persam-results/concept.persam", "persam-results/evil.png"} <= names
        images = {json.loads(line)["image"] for line in zf.read("persam-results/results.jsonl").splitlines()}
        assert images == {"<script>.jpg", "c.jpg", "evil.jpg", "win.jpg"}
    assert client.get(f"{base}/concept.persam").status_code == 200

    folder = ws.dir
    assert client.post(f"{base}/delete").status_code == 204  # what navigator.sendBeacon sends
    assert client.get(f"{base}/results").status_code == 404
    deadline = time.monotonic() + 10
    while folder.exists() or folder.with_name(folder.name + ".gone").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_page_errors_are_one_line(client):
    wid = client.post("/api/workspaces").json()["id"]
    base = f"/api/workspaces/{wid}"
    r = client.post(f"{base}/canvas/reference/prompt", json={"points": [[1, 1, 1]]})
    assert r.status_code == 404 and "upload the photo first" in _detail(r)
    assert client.post(f"{base}/personalize").status_code == 404
    assert client.post(f"{base}/segment").status_code == 422
    r = client.post(f"{base}/reference", files={"file": ("notes.jpg", b"just text", "image/jpeg")})
    assert r.status_code == 415
    client.post(f"{base}/reference", files={"file": ("ref.jpg", _jpeg(), "image/jpeg")})
    r = client.post(f"{base}/canvas/reference/prompt", content=b"{not json",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    r = client.post(f"{base}/canvas/reference/prompt", json={"points": [[1, 1, 7]]})
    assert r.status_code == 422 and "label" in _detail(r)
    r = client.post(f"{base}/canvas/reference/prompt", json={"points": [[1, 1, 0]]})
    assert r.status_code == 422 and "object too" in _detail(r)
    r = client.post(f"{base}/canvas/other/prompt", json={"points": []})
    assert r.status_code == 422
    assert client.delete(base).status_code == 204


def test_idle_workspaces_expire(tmp_path):
    with _client(tmp_path, workspace_ttl_s=0.0) as c:
        wid = c.post("/api/workspaces").json()["id"]
        time.sleep(0.01)
        c.app.app.state.persam.workspaces.sweep()
        assert c.get(f"/api/workspaces/{wid}/results").status_code == 404


def test_video_flow(client, clip):
    video, _ = clip
    wid = client.post("/api/workspaces").json()["id"]
    base = f"/api/workspaces/{wid}"
    r = client.post(f"{base}/video", files={"file": ("clip.mp4", video.read_bytes(), "video/mp4")})
    assert r.status_code == 200, r.text
    assert r.json()["frames"] == 6
    r = client.post(f"{base}/video", files={"file": ("clip.mp4", b"plain text, not a video", "video/mp4")})
    assert r.status_code == 415
    client.post(f"{base}/canvas/video/prompt", json={"box": [5, 10, 35, 40]})
    canvas = client.app.app.state.persam.workspaces.get(wid).canvases["video"]
    canvas.mask = np.zeros((64, 96), bool)
    canvas.mask[10:40, 5:35] = True
    job = _wait(client, f"{base}/jobs/", client.post(f"{base}/video/track").json())
    assert job["status"] == "done" and job["done"] == 6, job
    preview = client.get(f"{base}/video/preview.mp4")
    assert preview.status_code == 200 and preview.headers["content-type"] == "video/mp4"
    with zipfile.ZipFile(io.BytesIO(client.get(f"{base}/video/masks.zip").content)) as zf:
        assert sum(n.endswith(".png") for n in zf.namelist()) == 6
