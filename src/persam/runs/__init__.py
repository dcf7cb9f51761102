"""Runs over many photos or a whole video, as library calls that yield one event per item.

The command line, the web app and a Ray job are shells over these: they parse their input, create a run
(which checks everything it can before a model loads), and show the events as they come.
"""

from .images import RESULTS, ImageDone, ImageFailed, ImageRun, PhotoWriter, RunSummary, output_stems
from .video import RUN_FILE, FrameDone, VideoRun, frame_record

__all__ = [
    "RESULTS",
    "RUN_FILE",
    "FrameDone",
    "ImageDone",
    "ImageFailed",
    "ImageRun",
    "PhotoWriter",
    "RunSummary",
    "VideoRun",
    "frame_record",
    "output_stems",
]
