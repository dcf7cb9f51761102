"""``OUT/report.html``: one page to look through a run's results, made for people, not programs.

The page is a single static file that works offline by double-click: no server, no CDN, CSS and JS
inline, images by relative links. Each photo is a card (a small JPEG thumbnail from ``OUT/thumbs/``,
loaded lazily, so a 5,000-photo album stays light) with its name, score, a found / not found badge and
its concepts; the page sorts and filters them in plain JS, and a click shows the full overlay. Every
string that comes from the run (file names above all) is HTML-escaped, and every link URL-quoted.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image, ImageOps

from ..errors import PersamError
from ..io import atomic_open, atomic_write, overlay
from .cutouts import cutout_path
from .records import Instance, Photo

FILENAME = "report.html"
THUMB_SIZE = 320
THUMB_QUALITY = 82


@dataclass
class Card:
    """What the page shows for one photo."""

    name: str
    stem: str
    present: bool
    score: float
    concepts: list[str]
    thumb: str | None  # relative to the run folder
    thumb_size: tuple[int, int]
    full: str  # overlay (relative) or the photo (file: URI)
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, href)
    n_instances: int = 0
    note: str = ""  # why a photo is not found when that is known (a negative example it is like)


def _rejected_note(record: dict) -> str:
    """"looks like X, marked not yours" for a record whose object a negative example rejected (any concept)."""
    names = [record.get("rejected_by")] + [c.get("rejected_by") for c in (record.get("concepts") or {}).values()
                                           if isinstance(c, dict)]
    names = [n for n in names if isinstance(n, str)]
    return f"looks like {', '.join(dict.fromkeys(names))}, marked not yours" if names else ""


def _album_check_note(record: dict) -> str:
    """Why the album check (persam.album_check) called a photo absent that the search had found."""
    check = record.get("album_check")
    if not isinstance(check, dict) or check.get("present") is not False:
        return ""
    note = "found, but much less like it than its best photos here"
    try:
        return f"{note} ({check['score']:.2f} < {check['threshold']:.2f})"
    except (KeyError, TypeError, ValueError):
        return note


def _href(rel: str) -> str:
    """A relative link that survives any file name ('#', '?', '%', spaces, quotes)."""
    return quote(rel, safe="/")


def _photo_uri(path: Path) -> str:
    try:
        return Path(os.path.abspath(path)).as_uri()
    except ValueError:
        return ""


def _open_small(path: Path, size: int) -> Image.Image:
    """Open an image already reduced near ``size`` (JPEG draft decoding), upright, RGB."""
    with Image.open(path) as im:
        im.draft("RGB", (size * 2, size * 2))  # decode JPEGs at 1/2..1/8 scale: 5-20x faster
        im.load()
        im = ImageOps.exif_transpose(im) or im
        return im.convert("RGB")


def make_thumbnail(
    out_dir: Path, photo: Photo, labels: Callable[[], np.ndarray | None], size: int = THUMB_SIZE
) -> tuple[str, tuple[int, int]]:
    """Write ``thumbs/<stem>.jpg`` (longest side ``size``) unless an up-to-date one exists.

    Made from the overlay; without one, from the photo with the mask tinted on it (``labels`` is called
    only then). Returns the thumbnail's relative path and its (width, height).
    """
    rel = f"thumbs/{photo.stem}.jpg"
    target = out_dir / rel
    overlay_path = photo.overlay if photo.overlay is not None and photo.overlay.is_file() else None
    source = overlay_path or photo.image
    try:
        if target.stat().st_mtime >= source.stat().st_mtime:
            with Image.open(target) as done:
                return rel, done.size
    except OSError:
        pass
    try:
        im = _open_small(source, size)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise PersamError(f"{source}: no preview, not a readable image ({type(exc).__name__})") from exc
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    if overlay_path is None:
        ids = labels()
        if ids is not None and ids.any():
            small = Image.fromarray((ids > 0).astype(np.uint8) * 255, mode="L")
            mask = np.asarray(small.resize(im.size, Image.Resampling.NEAREST)) > 0
            im = Image.fromarray(overlay(np.asarray(im), mask), mode="RGB")
    atomic_write(target, lambda f: im.save(f, format="JPEG", quality=THUMB_QUALITY))
    return rel, im.size


class ReportBuilder:
    """Collects one :class:`Card` per photo (thumbnails are written as it goes), then writes the page."""

    def __init__(self, out_dir: str | os.PathLike, *, thumb_size: int = THUMB_SIZE) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / FILENAME
        self.thumb_size = thumb_size
        self.cards: list[Card] = []
        self.concepts: dict[str, None] = {}

    def add(
        self,
        photo: Photo,
        instances: list[Instance],
        present: bool,
        labels: Callable[[], np.ndarray | None] = lambda: None,
    ) -> Card:
        """Add a photo; ``instances`` are its present instances, ``labels`` gives its mask if a thumbnail needs it."""
        concepts = list(dict.fromkeys(i.concept for i in instances))
        for name in [*(i.concept for i in photo.instances or []), *concepts]:
            self.concepts.setdefault(name, None)
        score = max([photo.score, *(i.score for i in instances)])
        try:
            thumb, thumb_size = make_thumbnail(self.out_dir, photo, labels, self.thumb_size)
        except PersamError:
            thumb, thumb_size = None, (4, 3)
        has_overlay = photo.overlay is not None and photo.overlay.is_file()
        links = []
        if has_overlay:
            links.append(("Overlay", _href(photo.overlay_rel or "")))
        links.append(("Mask", _href(photo.mask_rel)))
        for inst in instances:
            rel = cutout_path(photo, inst, len(instances))
            if (self.out_dir / rel).is_file():
                label = "Cut-out" if len(instances) == 1 else f"Cut-out {inst.id}"
                links.append((label, _href(rel)))
        uri = _photo_uri(photo.image)
        if uri:
            links.append(("Original photo", uri))
        card = Card(
            name=photo.name,
            stem=photo.stem,
            present=present,
            score=float(score),
            concepts=concepts,
            thumb=_href(thumb) if thumb else None,
            thumb_size=thumb_size,
            full=_href(photo.overlay_rel) if has_overlay and photo.overlay_rel else uri,
            links=links,
            n_instances=len(instances),
            note="" if present else (_rejected_note(photo.raw) or _album_check_note(photo.raw)),
        )
        self.cards.append(card)
        return card

    def finish(self, title: str | None = None) -> Path:
        """Write report.html atomically and return its path."""
        page = render_page(self.cards, list(self.concepts), title=title or self.out_dir.resolve().name)
        with atomic_open(self.path, "w") as out:
            out.write(page)
        return self.path


def write_report(out_dir: str | os.PathLike, **options) -> Path:
    """report.html for the run in ``out_dir`` (thumbnails into ``out_dir/thumbs/``)."""
    from . import write_exports

    return write_exports(out_dir, ["report"], **options)["report"]


# ------------------------------------------------------------------------------------------ the page
def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _card_html(card: Card, index: int) -> str:
    status = "found" if card.present else "missing"
    badge = "Found" if card.present else "Not found"
    w, h = card.thumb_size
    if card.thumb:
        img = (
            f'<img src="{_e(card.thumb)}" alt="{_e(card.name)}" loading="lazy" decoding="async" '
            f'width="{w}" height="{h}">'
        )
    else:
        img = '<div class="noimg">No preview</div>'
    chips = "".join(f'<span class="chip">{_e(c)}</span>' for c in card.concepts)
    if card.n_instances > 1:
        chips += f'<span class="chip count">{card.n_instances} found</span>'
    pct = max(0.0, min(1.0, card.score)) * 100
    links = json.dumps(card.links, ensure_ascii=False)
    parent = card.stem.rpartition("/")[0]
    folder = f'<span class="dir">{_e(parent)}/</span>' if parent else ""
    return (
        f'<article class="card {status}" data-i="{index}" data-name="{_e(card.name)}" '
        f'data-score="{card.score:.4f}" data-status="{status}" '
        f'data-concepts="{_e(json.dumps(card.concepts, ensure_ascii=False))}" '
        f'data-full="{_e(card.full)}" data-links="{_e(links)}" data-stem="{_e(card.stem)}">'
        f'<a class="thumb" href="{_e(card.full)}" title="{_e(card.stem)}">{img}</a>'
        f'<div class="meta"><div class="name" title="{_e(card.stem)}">{folder}{_e(card.name)}</div>'
        f'<div class="row"><span class="badge {status}">{badge}</span>'
        f'<span class="score" title="score {card.score:.3f}"><span class="bar"><span style="width:{pct:.0f}%">'
        f"</span></span>{card.score:.2f}</span></div>"
        f'<div class="chips">{chips}</div>'
        + (f'<div class="why">{_e(card.note)}</div>' if card.note else "")
        + "</div></article>"
    )


def render_page(cards: list[Card], concepts: list[str], *, title: str = "persam") -> str:
    """The whole report page as a string (cards in the given order; the page sorts them itself)."""
    n = len(cards)
    found = sum(c.present for c in cards)
    concept_options = "".join(f'<option value="{_e(c)}">{_e(c)}</option>' for c in concepts)
    concept_names = ", ".join(concepts) if concepts else "none"
    body = "\n".join(_card_html(card, i) for i, card in enumerate(cards))
    made = datetime.now().strftime("%Y-%m-%d %H:%M")
    values = {
        "css": _page_part("report.css"),
        "js": _page_part("report.js"),
        "title": _e(title),
        "made": _e(made),
        "n": str(n),
        "found": str(found),
        "missing": str(n - found),
        "n_concepts": str(len(concepts)),
        "concept_names": _e(concept_names),
        "concept_hidden": "" if len(concepts) > 1 else " hidden",
        "concept_options": concept_options,
        "cards": body,
    }
    # one pass, so that nothing inserted (a file name holding "{{n}}") is ever substituted again
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], _page_part("page.html"))


@cache
def _page_part(name: str) -> str:
    """One file of the page (``report_page/``: the HTML with ``{{name}}`` slots, its CSS and its script)."""
    return resources.files(__package__).joinpath("report_page", name).read_text(encoding="utf-8")
