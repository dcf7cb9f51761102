"""Benchmark: speed and memory of ``persam video`` on a long 480p video (memory must stay flat with length).

    python bench/video_memory.py [--frames 1000] [--sequence bear] [--threads 2] [--keep DIR]

Makes an N-frame 854x480 H.264 video by playing a DAVIS sequence forwards and backwards (so the motion stays
continuous), then runs the real command line on it as a separate process, with the sequence's first mask as
the reference and a preview video:

    persam video clip.mp4 --ref-mask 00000.png -o OUT --overlay OUT/preview.mp4 -q

and samples the process's memory from /proc every 0.2 s. Printed: at 10, 100, 250, 500, ... frames done, the
resident memory now and the peak so far (VmRSS, VmHWM), and frames per second since frame 10 (the model load
and first frames excluded).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evaldata import SHARED  # noqa: E402

DAVIS = SHARED / "davis2016-train-subset" / "DAVIS"


def make_video(path: Path, sequence: str, frames: int) -> Path:
    """Write ``frames`` frames of ``sequence`` played back and forth; returns its first annotation."""
    from persam.frames import VideoWriter
    from persam.io import load_image

    files = sorted((DAVIS / "JPEGImages" / "480p" / sequence).glob("*.jpg"))
    order = files + files[-2:0:-1]
    with VideoWriter(path, 24) as writer:
        for i in range(frames):
            writer.write(load_image(order[i % len(order)]))
    return DAVIS / "Annotations" / "480p" / sequence / f"{files[0].stem}.png"


def _status(pid: int) -> dict[str, float]:
    values = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024**2  # kB -> GB
    return values


def _lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except FileNotFoundError:
        return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--sequence", default="bear")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--keep", type=Path, help="work in this folder and keep the outputs")
    args = ap.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="persam-video-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "clip.mp4"
    t0 = time.perf_counter()
    mask = make_video(clip, args.sequence, args.frames)
    print(f"made {clip} ({args.frames} frames, 854x480) in {time.perf_counter() - t0:.0f} s", flush=True)

    out = work / "out"
    cmd = [sys.executable, "-m", "persam.cli", "video", str(clip), "--ref-mask", str(mask), "-o", str(out),
           "--overlay", str(out / "preview.mp4"), "--threads", str(args.threads), "-q", "--overwrite"]
    print(" ".join(cmd), flush=True)
    marks = [m for m in (10, 100, 250, 500, 750, 1000, 2000, 5000) if m <= args.frames]
    if args.frames not in marks:
        marks.append(args.frames)
    rows = []
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    t10 = None
    status = {"VmRSS": 0.0, "VmHWM": 0.0}
    while proc.poll() is None:
        try:
            status = _status(proc.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        done = _lines(out / "results.jsonl")
        while marks and done >= marks[0]:
            now = time.perf_counter()
            if marks[0] == 10:
                t10 = now
            fps = (marks[0] - 10) / (now - t10) if t10 and now > t10 else float("nan")
            rows.append((marks.pop(0), status["VmRSS"], status["VmHWM"], now - start, fps))
        time.sleep(0.2)
    if proc.returncode:
        print(f"persam video failed (exit {proc.returncode})")
        return 1
    if marks:  # finished between two samples: the last peak seen is the process's peak
        now = time.perf_counter()
        for m in marks:
            rows.append((m, status["VmRSS"], status["VmHWM"], now - start, (m - 10) / (now - t10)))

    print("\n| frames done | RSS now (GB) | peak RSS so far (GB) | elapsed (s) | frames/s since frame 10 |")
    print("|---:|---:|---:|---:|---:|")
    for done, rss, hwm, elapsed, fps in rows:
        print(f"| {done} | {rss:.3f} | {hwm:.3f} | {elapsed:.0f} | {fps:.2f} |")
    print(f"\noutputs: {out} ({_lines(out / 'results.jsonl')} records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
