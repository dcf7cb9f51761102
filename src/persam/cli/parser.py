"""The ``persam`` command's arguments: every subcommand, its options and their help (no PyTorch here)."""

from __future__ import annotations

import argparse

from .. import __version__
from ..registry import MODELS, models_help
from ..settings import DEFAULT_METHOD, DEFAULT_PRESENCE, METHODS, VIDEO_SCHEMES


def _pair(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        if len(parts) == 2:
            return float(parts[0]), float(parts[1])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r}: expected X,Y (pixels)")


def _box(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        if len(parts) == 4:
            x0, y0, x1, y1 = (float(p) for p in parts)
            if x1 > x0 and y1 > y0:
                return x0, y0, x1, y1
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r}: expected X0,Y0,X1,Y1 (pixels) with X1>X0 and Y1>Y0")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=list(MODELS), help=f"SAM backbone ({models_help()})")
    g.add_argument("--checkpoint", metavar="PATH",
                   help="weights file (default: user cache, downloaded and verified); fine-tuned weights of "
                        "the --model architecture load too")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    g.add_argument("--threads", type=int, metavar="N", help="CPU threads for PyTorch (default: all cores)")
    g.add_argument("--runtime", choices=("auto", "torch", "openvino", "onnxruntime"), default="auto",
                   help="what runs the model: auto (default: OpenVINO when installed, else PyTorch), "
                        "torch, openvino or onnxruntime (pip install persam[openvino] / persam[onnx])")
    g.add_argument("--precision", choices=("auto", "f32", "mixed", "bf16"), default="auto",
                   help="encoder precision: auto (default: mixed with OpenVINO, else f32), f32, "
                        "or with OpenVINO on CPUs with bf16 support mixed (the first stage in f32, the rest in "
                        "bf16) or bf16 (fastest, masks differ)")


def _add_reference_options(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group(
        "reference (images of the object, each with its mask; or one image and a prompt to make the mask)"
    )
    g.add_argument("--ref", action="append", default=[], required=required, metavar="IMAGE",
                   help="reference image showing the object (repeat for several views)")
    g.add_argument("--ref-mask", action="append", default=[], metavar="MASK",
                   help="mask of the object in the matching --ref (any non-zero value = object)")
    g.add_argument("--ref-point", type=_pair, action="append", default=[], metavar="X,Y",
                   help="instead of --ref-mask: a click on the object (repeatable)")
    g.add_argument("--ref-neg-point", type=_pair, action="append", default=[], metavar="X,Y",
                   help="instead of --ref-mask: a click on the background (repeatable)")
    g.add_argument("--ref-box", type=_box, metavar="X0,Y0,X1,Y1", help="instead of --ref-mask: a box around the object")
    g.add_argument("--method", choices=METHODS,
                   help=f"persam-f fits 2 weights in under a second, persam is training-free "
                        f"(default: {DEFAULT_METHOD})")
    g.add_argument("--paper", action="store_true",
                   help="the paper's method as published: one decoding from the best match, SAM's mask as it is "
                        "(default: persam's search for the whole object, masks at the outline level fitted on the "
                        "reference and snapped to the photo's edges)")


def _add_export_options(p: argparse.ArgumentParser, default: str) -> None:
    g = p.add_argument_group("exports")
    g.add_argument("--export", default=default, metavar="KINDS",
                   help="comma-separated: masks, coco (OUT/coco.json), cutouts (OUT/cutouts/), dreambooth "
                        "(OUT/dreambooth/<concept>/ square crops), report (OUT/report.html), or all "
                        f"(default: {default})")
    g.add_argument("--crop-size", type=int, default=512, metavar="N",
                   help="side of the DreamBooth crops in pixels (default 512)")
    g.add_argument("--background", choices=("white", "transparent", "keep"), default="white",
                   help="background of the DreamBooth crops (default white)")
    g.add_argument("--hard-edges", action="store_true",
                   help="cut-outs and crops with the mask as alpha, 0 or 255 (default: soft edges along the photo's)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="persam",
        description="One-shot personalized segmentation: show persam one object, it finds it in other images.",
    )
    parser.add_argument("--version", action="version", version=f"persam {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser(
        "segment",
        help="segment the reference object in target images",
        description="Segment the object of the reference image(s), or of a saved concept, in every TARGET "
        "image (files or folders).",
    )
    _add_reference_options(seg, required=False)
    seg.add_argument("--concept", action="append", default=[], metavar="FILE",
                     help="a concept saved by 'persam fit' (instead of --ref); repeat to find several concepts in "
                          "one pass (each photo is encoded once; all must be made with the same model)")
    seg.add_argument("targets", nargs="+", metavar="TARGET", help="images or folders (searched recursively)")
    seg.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    seg.add_argument("--overwrite", action="store_true", help="redo images that already have results in OUT")
    seg.add_argument("--no-overlay", action="store_true", help="do not write the *_overlay.jpg previews")
    seg.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    seg.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="run on Ray (pip install 'persam[ray]'): this machine, or 'auto' / ray://HOST:10001")
    seg.add_argument("--ray-actors", type=int, default=2, metavar="N",
                     help="with --ray: model copies (actors), each on --threads cores (default 1)")
    album = seg.add_argument_group("albums (presence, instances, caching)")
    album.add_argument("--presence", type=float, metavar="F",
                       help="call a concept absent in a photo (empty mask) when its score is below F x the score "
                            f"it gives its own reference (0..1; default {DEFAULT_PRESENCE}; 0: always keep the mask "
                            "found)")
    album.add_argument("--instances", choices=("one", "all"), default="one",
                       help="one (default): the best match per concept; all: every instance (masks become "
                            "palette PNGs of instance ids)")
    album.add_argument("--max-instances", type=int, default=5, metavar="N",
                       help="with --instances all: at most N instances per concept and photo (default 5)")
    album.add_argument("--no-album-check", action="store_true",
                       help="decide every photo on its own: by default, once all photos are done, a concept is "
                            "called absent in a photo when what it found there is much less like its object than "
                            "its best photos in the album")
    album.add_argument("--cache", metavar="DIR",
                       help="keep image embeddings in DIR, so that another concept (or a rerun) over the same "
                            "photos skips the image encoder")
    _add_export_options(seg, default="masks,report")
    _add_model_options(seg)
    seg.set_defaults(command_name="segment")

    exp = sub.add_parser(
        "export-results",
        help="make exports of a finished 'persam segment' output folder",
        description="Write exports (COCO annotations, cut-outs, DreamBooth crops, an HTML report) from the masks "
        "and results.jsonl of an output folder of 'persam segment'.",
    )
    exp.add_argument("output", metavar="OUT", help="output folder of 'persam segment'")
    _add_export_options(exp, default="report")
    exp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    exp.set_defaults(command_name="export-results")

    mod = sub.add_parser(
        "export",
        help="export the model (image encoder and mask decoder) as ONNX and OpenVINO IR for deployment",
        description="Write the image encoder and the prompt encoder + mask decoder (with PerSAM's attention and "
        "target-embedding inputs) as ONNX and/or OpenVINO IR, and persam_model.json describing their inputs and "
        "the pre/post-processing.",
    )
    mod.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write the models to")
    mod.add_argument("--format", nargs="+", choices=("onnx", "openvino"), default=["onnx", "openvino"],
                     help="onnx and/or openvino (default: both)")
    mod.add_argument("-q", "--quiet", action="store_true", help="no download progress")
    _add_model_options(mod)
    mod.set_defaults(command_name="export")

    fit = sub.add_parser(
        "fit",
        help="personalize once and save the concept to a .persam file",
        description="Learn the object of the reference image(s) and save it as a small concept file that "
        "'persam segment --concept' and PerSAM.load() reuse without the references.",
    )
    _add_reference_options(fit, required=True)
    fit.add_argument("-o", "--output", required=True, metavar="FILE", help="concept file to write (.persam)")
    fit.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    fit.add_argument("-q", "--quiet", action="store_true", help="no download progress")
    _add_model_options(fit)
    fit.set_defaults(command_name="fit")

    exc = sub.add_parser(
        "exclude",
        help="teach a concept what it is not: the object it found in photos it got wrong",
        description="For each PHOTO (one where the concept found something that is not your object: another dog, "
        "a look-alike), the object the concept finds there becomes a negative example of CONCEPT: from then on an "
        "object more like it than like your reference is absent. Writes CONCEPT again (or -o FILE).",
    )
    exc.add_argument("concept", metavar="CONCEPT", help="concept file made by 'persam fit' (.persam)")
    exc.add_argument("photos", nargs="+", metavar="PHOTO", help="photo(s) the concept got wrong")
    exc.add_argument("-o", "--output", metavar="FILE", help="write the corrected concept here (default: CONCEPT)")
    exc.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    exc.add_argument("-q", "--quiet", action="store_true", help="no download progress")
    _add_model_options(exc)
    exc.set_defaults(command_name="exclude")

    vid = sub.add_parser(
        "video",
        help="segment the object(s) of one frame through a whole video",
        description="Segment the object(s) masked in one frame of INPUT (a video file or a folder of frames) in "
        "every frame. Writes OUT/<frame>.png per frame (0/255 for one object, a DAVIS palette PNG of object ids "
        "for several) and OUT/results.jsonl (score, present, seconds per frame).",
    )
    vid.add_argument("input", metavar="INPUT", help="video file (mp4, mov, avi, webm, mkv) or folder of frames")
    vid.add_argument("--ref-mask", action="append", required=True, metavar="MASK",
                     help="mask of the object in the reference frame; repeat for several objects, or give one "
                          "palette mask of object ids (DAVIS annotation)")
    vid.add_argument("--ref", metavar="FRAME", default="0",
                     help="the reference frame: index from 0, or file name in a folder (default: the first)")
    vid.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder for the masks")
    vid.add_argument("--overlay", metavar="FILE", help="also write a preview video (.mp4, .mov, .mkv, .avi, .webm)")
    vid.add_argument("--fps", type=float, help="frame rate of the preview for a folder of frames (default 24)")
    vid.add_argument("--method", choices=METHODS, help=f"persam-f or persam (default: {DEFAULT_METHOD})")
    vid.add_argument("--scheme", choices=VIDEO_SCHEMES,
                     help="how frames are linked: persam (default: follows the object, re-detects it when lost), "
                          "paper (the paper's script) or per-frame (no link)")
    vid.add_argument("--presence", type=float, metavar="F",
                     help="call the object absent when its score is below F x the reference frame's own "
                          "(0..1; default 0.6; higher: absent sooner)")
    vid.add_argument("--overwrite", action="store_true", help="replace the results already in OUT")
    vid.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_options(vid)
    vid.set_defaults(command_name="video")

    web = sub.add_parser(
        "app",
        help="start the web app (and HTTP API) on this machine",
        description="Serve a web page where you mark your object on one photo and find it in other photos and "
        "videos, and an HTTP API (/api, docs at /docs). Binds 127.0.0.1 (this machine only) unless --host says "
        "otherwise. Ctrl-C stops it; uploads live in a temporary folder that is removed.",
    )
    web.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    web.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    web.add_argument("--max-upload-mb", type=int, default=25, metavar="MB",
                     help="largest photo, mask or concept accepted, in MB (default 25)")
    web.add_argument("-q", "--quiet", action="store_true", help="no download progress")
    _add_model_options(web)
    web.set_defaults(command_name="app")

    dl = sub.add_parser(
        "download",
        help="fetch and verify model weights into the user cache",
        description="Fetch model weights into the user cache ($PERSAM_HOME, else the XDG cache) and verify them.",
    )
    dl.add_argument("models", nargs="*", default=["vit_t"], metavar="MODEL",
                    help=f"default vit_t; {models_help()}")
    dl.add_argument("--checkpoint", metavar="PATH", help="verify this local file instead (one model)")
    dl.set_defaults(command_name="download")
    return parser
