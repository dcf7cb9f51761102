"""Benchmark: semi-supervised video object segmentation on a DAVIS layout, every scheme in the same run.

    python bench/davis.py [DIR] [--sequences bear boat ...] [--max-frames N] [--model vit_t] [--threads 2]
                          [--runtimes torch openvino openvino:bf16]

DIR holds ``[DAVIS/]JPEGImages/480p/<seq>/NNNNN.jpg`` and ``Annotations/480p/<seq>/NNNNN.png`` (default:
../shared/data/davis2016-train-subset). Protocol (DAVIS semi-supervised): the first frame's mask is given
(0/255 for one object, or a palette PNG of object ids with 255 = void); J (region IoU) and F (boundary
F-measure, tolerance 0.008 of the diagonal) are computed per object on every frame but the first and the
last, averaged per object, then over all objects; J&F is their mean.

Every frame is decoded and encoded once; each scheme then decodes it with its own state:
- ``per-frame PerSAM``: the paper's training-free PerSAM on every frame, no temporal cue;
- ``per-frame PerSAM-F``: the same with PerSAM-F (what persam's default does when the object is lost);
- ``paper video``: the paper's video script (previous box and centre as prompts, see persam.tracking);
- ``persam``: persam's default scheme.
Seconds per frame = decoding the JPEG + encoder + that scheme's decoder work; frames/s is its inverse. Schemes
whose settings say ``edges`` snap the masks they give back to the frame's edges (``persam.edges``), as
``persam video`` does; ``--compare-edges`` runs each of them without it too, on the same encodings.

With ``--runtimes`` (RUNTIME[:PRECISION] entries, see :mod:`persam.runtimes`: the encoder at that precision,
the decoder by the same runtime in f32), persam's scheme runs once per runtime instead, every frame encoded
by each in turn, to compare their J&F and speed.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from evaldata import SHARED, davis_root, davis_sequences, read_ids, sequence_frames

DEFAULT_DIR = SHARED / "davis2016-train-subset"
VOID = 255


def configs(default_method: str):
    from persam.settings import Settings, VideoSettings
    from persam.tracking import PAPER_VIDEO_SETTINGS

    return {
        "per-frame PerSAM": (Settings.for_method("persam"), VideoSettings(scheme="per-frame")),
        "per-frame PerSAM-F": (Settings.for_method("persam-f"), VideoSettings(scheme="per-frame")),
        "paper video": (PAPER_VIDEO_SETTINGS, VideoSettings(scheme="paper")),
        "persam": (Settings.for_method(default_method), VideoSettings()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--sequences", nargs="+", metavar="SEQ", help="only these sequences")
    ap.add_argument("--max-frames", type=int, metavar="N", help="only the first N frames of each sequence")
    ap.add_argument("--model", default="vit_t")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runtimes", nargs="+", metavar="RUNTIME[:PRECISION]",
                    help="compare persam's scheme across encoder runtimes instead of the schemes")
    ap.add_argument("--recheck", type=float, metavar="R",
                    help="persam's scheme with VideoSettings(recheck=R) (search the whole frame too when unsure)")
    ap.add_argument("--compare-edges", action="store_true",
                    help="also run every scheme that snaps its masks to the frame's edges without it")
    args = ap.parse_args(argv)

    import torch

    from persam.io import load_image
    from persam.loading import load_sam, tune_cpu_allocator
    from persam.method import PerSAM
    from persam.metrics import boundary_f_measure, region_similarity
    from persam.predictor import SamPredictor
    from persam.settings import DEFAULT_METHOD
    from persam.tracking import VideoTracker

    torch.set_num_threads(args.threads)
    root = davis_root(args.dir)
    seqs = args.sequences or davis_sequences(root)
    tune_cpu_allocator()  # as the command line does
    sam = load_sam(args.model, progress=False)
    runs = configs(DEFAULT_METHOD)
    if args.recheck is not None:
        from dataclasses import replace

        method_settings, video_settings = runs["persam"]
        runs["persam"] = (method_settings, replace(video_settings, recheck=args.recheck))
    predictor = SamPredictor(sam)
    predictors = dict.fromkeys(runs, predictor)
    if args.runtimes:
        from persam.runtimes import make_decoder, make_encoder

        persam_run = runs["persam"]
        runs, predictors = {}, {}
        for entry in dict.fromkeys(args.runtimes):
            runtime, _, precision = entry.partition(":")
            runs[f"persam {entry}"] = persam_run
            predictors[f"persam {entry}"] = SamPredictor(sam, encoder=make_encoder(sam, runtime, precision or "f32"),
                                                         decoder=make_decoder(sam, runtime))
    if args.compare_edges:  # every run also without snapping its masks to the frame's edges, same encodings
        from dataclasses import replace

        for name in [n for n, (m, _) in runs.items() if m.edges]:
            method_settings, video_settings = runs[name]
            runs[f"{name}, SAM's edges"] = (replace(method_settings, edges=False), video_settings)
            predictors[f"{name}, SAM's edges"] = predictors[name]
    names = list(runs)
    # per scheme: per sequence, per object id -> (J list, F list); seconds of decoder work; frames
    scores = {n: {} for n in names}
    decoder_s = dict.fromkeys(names, 0.0)
    start_s = dict.fromkeys(names, 0.0)
    encode_s, n_frames = dict.fromkeys(names, 0.0), 0
    print(f"DAVIS semi-supervised: {root} | {len(seqs)} sequences | model {args.model} | {args.threads} threads",
          flush=True)

    def encode_once(image):
        """Every distinct predictor encodes ``image`` once, in turn: (embedding, seconds) per run name."""
        done = {}
        for p in predictors.values():
            if id(p) not in done:
                t0 = time.perf_counter()
                emb = p.encode(image)
                done[id(p)] = (emb, time.perf_counter() - t0)
        return {n: done[id(predictors[n])] for n in names}

    wall = time.perf_counter()
    for seq in seqs:
        pairs = sequence_frames(root, seq)[: args.max_frames]
        if len(pairs) < 3:
            print(f"{seq}: fewer than 3 frames, skipped")
            continue
        image0 = load_image(pairs[0][0])
        ids0 = read_ids(pairs[0][1])
        ids = [int(i) for i in np.unique(ids0) if i not in (0, VOID)]
        masks = [ids0 == i for i in ids]
        emb0s = {n: emb for n, (emb, _) in encode_once(image0).items()}
        trackers = {}
        for n, (method_settings, video_settings) in runs.items():
            t0 = time.perf_counter()
            emb0 = emb0s[n]
            persams = [PerSAM.from_embeddings(predictors[n], [emb0], [m], method_settings) for m in masks]
            trackers[n] = VideoTracker(persams, ids, video_settings)
            trackers[n].start(emb0, masks)
            start_s[n] += time.perf_counter() - t0
            scores[n][seq] = {i: ([], []) for i in ids}
        for k, (frame_path, ann_path) in enumerate(pairs[1:], start=1):
            t0 = time.perf_counter()
            image = load_image(frame_path)
            read_s = time.perf_counter() - t0
            embs = {}
            for n, (emb, seconds) in encode_once(image).items():
                embs[n] = emb
                encode_s[n] += read_s + seconds
            n_frames += 1
            evaluated = k < len(pairs) - 1  # DAVIS leaves out the first and the last frame
            gt = read_ids(ann_path) if evaluated else None
            void = gt == VOID if evaluated else None
            for n, tracker in trackers.items():
                t0 = time.perf_counter()
                result = tracker.step(embs[n], image)
                decoder_s[n] += time.perf_counter() - t0
                if evaluated:
                    for i in ids:
                        j_list, f_list = scores[n][seq][i]
                        j_list.append(region_similarity(result.labels == i, gt == i, void))
                        f_list.append(boundary_f_measure(result.labels == i, gt == i, void))
        line = " | ".join(f"{n} {_jf(scores[n][seq]):.3f}" for n in names)
        print(f"{seq:16s} {len(pairs):4d} frames, {len(ids)} object(s) | J&F {line}", flush=True)

    print_table(names, scores, decoder_s, start_s, encode_s, n_frames)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    encoders = ", ".join(f"{n} {s / max(n_frames, 1):.3f}" for n, s in encode_s.items())
    print(f"\nJPEG decoding + encoder s/frame over {n_frames} frames: {encoders}; "
          f"peak RSS {peak:.2f} GB; wall {time.perf_counter() - wall:.0f} s")
    return 0


def _object_means(per_object: dict) -> list[tuple[float, float]]:
    return [(float(np.mean(j)), float(np.mean(f))) for j, f in per_object.values() if j]


def _jf(per_object: dict) -> float:
    means = _object_means(per_object)
    return float(np.mean([(j + f) / 2 for j, f in means])) if means else float("nan")


def print_table(names, scores, decoder_s, start_s, encode_s, n_frames) -> None:
    seqs = list(next(iter(scores.values())))
    width = max(len(n) for n in names) + 2
    print("\nJ&F per sequence")
    print(f"| {'sequence':16s} | " + " | ".join(f"{n:>{width}s}" for n in names) + " |")
    print("|" + "---|" * (len(names) + 1))
    for seq in seqs:
        print(f"| {seq:16s} | " + " | ".join(f"{_jf(scores[n][seq]):>{width}.4f}" for n in names) + " |")
    print("\nMean over objects")
    print(f"| {'':16s} | " + " | ".join(f"{n:>{width}s}" for n in names) + " |")
    print("|" + "---|" * (len(names) + 1))
    rows = {"J": [], "F": [], "J&F": [], "s/frame": [], "frames/s": [], "start s/seq": []}
    for n in names:
        means = [m for seq in seqs for m in _object_means(scores[n][seq])]
        j = float(np.mean([m[0] for m in means]))
        f = float(np.mean([m[1] for m in means]))
        per_frame = (encode_s[n] + decoder_s[n]) / max(n_frames, 1)
        rows["J"].append(j)
        rows["F"].append(f)
        rows["J&F"].append((j + f) / 2)
        rows["s/frame"].append(per_frame)
        rows["frames/s"].append(1 / per_frame if per_frame else float("nan"))
        rows["start s/seq"].append(start_s[n] / max(len(seqs), 1))
    for key, values in rows.items():
        print(f"| {key:16s} | " + " | ".join(f"{v:>{width}.4f}" for v in values) + " |")


if __name__ == "__main__":
    sys.exit(main())
