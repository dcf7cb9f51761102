"""What requests send besides files: the page's JSON bodies and the choices a form field may take."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Method = Literal["persam-f", "persam"]
MaskFormat = Literal["png", "rle", "both"]


class PromptBody(BaseModel):
    """Clicks ``[[x, y, label], ...]`` (label 1 object, 0 background) and/or a box, in full-size pixels."""

    points: list[list[float]] = Field(default_factory=list, max_length=64)
    box: list[float] | None = None


class PersonalizeBody(BaseModel):
    method: Method = "persam-f"
