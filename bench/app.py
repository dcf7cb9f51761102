"""Benchmark: ``persam app`` as a real server process, against the CLI on the same photos and machine.

    python bench/app.py [--perseg DIR] [--requests 100] [--port 0] [--threads N]

Starts ``persam app`` (MobileSAM) in its own process and measures, over HTTP from this process:

- click -> mask preview: one click on the reference, SAM's mask back as a PNG (decoder only; median of 10);
- personalize: PerSAM-F fit + saving the concept, request to answer (median of 3);
- seconds per target through the API (``POST /api/concepts/{id}/segment``: upload, decode, encode,
  PerSAM-F, PNG + COCO RLE, JSON), against ``persam segment --concept`` on the same photos, interleaved
  round by round (wall time per photo with and without the model load, and the CLI's own per-photo seconds);
- the server's memory (RSS) after 1, 25, 50, 75 and 100 segment requests and its peak (VmHWM): flat means
  no leak per request.

Then stops the server with Ctrl-C (SIGINT) and checks it exits cleanly. Prints one markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaldata import shared_data  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _multipart(files: dict[str, Path], fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, path in files.items():
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{path.name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n")
        parts.append(head.encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Client:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, *, files: dict[str, Path] | None = None, fields=None, json_body=None):
        data, headers = None, {}
        if files is not None:
            data, headers["Content-Type"] = _multipart(files, fields)
        elif json_body is not None:
            data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=600) as r:
            body = r.read()
            return json.loads(body) if r.headers.get("Content-Type", "").startswith("application/json") else body


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB (Linux)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--perseg", type=Path, default=shared_data() / "perseg-mini")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()

    images = args.perseg / "Images"
    ref, ref_mask = images / "cat" / "00.jpg", args.perseg / "Annotations" / "cat" / "00.png"
    targets = sorted(p for p in images.rglob("*.jpg") if p != ref)
    port = args.port or _free_port()
    threads = ["--threads", str(args.threads)] if args.threads else []
    cmd = [sys.executable, "-m", "persam.cli", "app", "--port", str(port), "-q", *threads]
    start = time.perf_counter()
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = Client(f"http://127.0.0.1:{port}")
    while True:
        try:
            api.call("GET", "/api/health")
            break
        except (urllib.error.URLError, ConnectionError):
            if server.poll() is not None or time.perf_counter() - start > 120:
                raise SystemExit(f"the server did not start:\n{server.stdout.read()}") from None
            time.sleep(0.1)
    startup = time.perf_counter() - start
    rows: list[tuple[str, str]] = [("server start (process + MobileSAM load) to first answer", f"{startup:.2f} s")]
    try:
        # the page's flow: reference, clicks, personalize
        wid = api.call("POST", "/api/workspaces")["id"]
        t = time.perf_counter()
        info = api.call("POST", f"/api/workspaces/{wid}/reference", files={"file": ref})
        rows.append(("reference upload + encode (once per photo)", f"{time.perf_counter() - t:.2f} s"))
        clicks = []
        for i in range(10):
            t = time.perf_counter()
            out = api.call("POST", f"/api/workspaces/{wid}/canvas/reference/prompt",
                           json_body={"points": [[info["width"] * 0.3 + i, info["height"] * 0.6, 1]]})
            clicks.append(time.perf_counter() - t)
            assert out["area"] > 0
        rows.append(("click -> mask preview (decoder only, median of 10)", f"{statistics.median(clicks):.3f} s"))
        fits, server_fit = [], []
        for _ in range(3):
            t = time.perf_counter()
            out = api.call("POST", f"/api/workspaces/{wid}/personalize", json_body={"method": "persam-f"})
            fits.append(time.perf_counter() - t)
            server_fit.append(out["fit_seconds"])
        rows.append(("personalize (PerSAM-F) -> ready, median of 3",
                     f"{statistics.median(fits):.3f} s (of which fit {statistics.median(server_fit):.3f} s)"))

        # the API and the CLI on the same photos, interleaved (API round, CLI round, ...): a busy machine slows both
        concept = api.call("POST", "/api/concepts", files={"image": ref, "mask": ref_mask})
        seg = f"/api/concepts/{concept['id']}/segment"
        api.call("POST", seg, files={"image": targets[0]})  # warm-up
        api_wall, api_server, cli_times, cli_inner = [], [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            concept_file = Path(tmp) / "cat.persam"
            concept_file.write_bytes(api.call("GET", concept["download"]))
            for round_ in range(2):
                for target in targets:
                    t = time.perf_counter()
                    out = api.call("POST", seg, files={"image": target})
                    api_wall.append(time.perf_counter() - t)
                    api_server.append(out["seconds"]["total"])
                out_dir = Path(tmp) / f"out{round_}"
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "persam.cli", "segment", "--concept", str(concept_file),
                                *map(str, targets), "-o", str(out_dir), "-q", "--export", "masks", *threads],
                               check=True, capture_output=True)
                cli_times.append(time.perf_counter() - t)
                cli_inner += [json.loads(line)["seconds"]["total"]
                              for line in (out_dir / "results.jsonl").read_text().splitlines()]
        # memory: 100 more requests
        rss = []
        for n in range(1, args.requests + 1):
            api.call("POST", seg, files={"image": targets[n % len(targets)]})
            if n in (1, 25, 50, 75, args.requests):
                rss.append((n, *_rss_mb(server.pid)))
        n = len(targets)
        rows.append((f"seconds per target, API (client wall, {n} photos x 2, median)",
                     f"{statistics.median(api_wall):.3f} s (server's own: {statistics.median(api_server):.3f} s)"))
        cli_inner_med = statistics.median(cli_inner)
        rows.append((f"seconds per target, CLI `persam segment --concept` ({n} photos x 2)",
                     f"{statistics.median(cli_times) / n:.3f} s incl. model load; {cli_inner_med:.3f} s per photo"))
        for count, now, peak in rss:
            rows.append((f"server RSS after {count} segment requests", f"{now:.0f} MB (peak {peak:.0f} MB)"))
        api.call("DELETE", f"/api/workspaces/{wid}")
    finally:
        t = time.perf_counter()
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            code = "killed"
        output = server.stdout.read()
    rows.append(("Ctrl-C (SIGINT) -> exited", f"{time.perf_counter() - t:.2f} s, exit code {code}, "
                 f"{'said stopped' if 'stopped' in output else 'no stop message'}"))
    print(f"`persam app` vs CLI, MobileSAM, CPU threads: {args.threads or os.cpu_count()}, "
          f"{len(targets)} PerSeg photos\n")
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
