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
        f'<div class="chips">{chips}</div></div></article>'
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
        "css": _CSS,
        "js": _JS,
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
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], _TEMPLATE)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="persam">
<title>{{title}} · persam results</title>
<style>{{css}}</style>
</head>
<body>
<header class="top">
  <div class="title">
    <h1>{{title}}</h1>
    <p class="sub">persam results · made {{made}}</p>
  </div>
  <div class="stats">
    <div class="stat"><b id="n-all">{{n}}</b><span>photos</span></div>
    <div class="stat ok"><b id="n-found">{{found}}</b><span>found</span></div>
    <div class="stat no"><b id="n-missing">{{missing}}</b><span>not found</span></div>
    <div class="stat" title="{{concept_names}}"><b id="n-concepts">{{n_concepts}}</b><span>concepts</span></div>
  </div>
</header>
<nav class="tools" aria-label="Sort and filter">
  <div class="seg" role="group" aria-label="Show">
    <button type="button" data-show="all" class="on" aria-pressed="true">All <i>{{n}}</i></button>
    <button type="button" data-show="found" aria-pressed="false">Found <i>{{found}}</i></button>
    <button type="button" data-show="missing" aria-pressed="false">Not found <i>{{missing}}</i></button>
  </div>
  <label class="pick"{{concept_hidden}}>Concept
    <select id="concept"><option value="">All concepts</option>{{concept_options}}</select></label>
  <label class="pick">Sort
    <select id="sort">
      <option value="score-desc">Best score first</option>
      <option value="score-asc">Lowest score first</option>
      <option value="name-asc">Name A–Z</option>
      <option value="name-desc">Name Z–A</option>
    </select></label>
  <input id="search" type="search" placeholder="Search file names" aria-label="Search file names">
  <span id="shown" class="shown"></span>
</nav>
<noscript><p class="empty">Sorting and filtering need JavaScript; every photo is listed below.</p></noscript>
<main id="grid" class="grid">
{{cards}}
</main>
<p id="empty" class="empty" hidden>No photos match these filters.</p>
<div id="viewer" class="viewer" hidden role="dialog" aria-modal="true" aria-label="Photo">
  <button type="button" class="close" id="v-close" aria-label="Close">×</button>
  <button type="button" class="nav prev" id="v-prev" aria-label="Previous">‹</button>
  <figure><img id="v-img" alt="">
    <figcaption><span id="v-badge" class="badge"></span><b id="v-name"></b><span id="v-score"></span>
    <span id="v-links" class="links"></span></figcaption></figure>
  <button type="button" class="nav next" id="v-next" aria-label="Next">›</button>
</div>
<script>{{js}}</script>
</body>
</html>
"""

_CSS = """
:root{--bg:#f5f6f8;--card:#fff;--ink:#1d2330;--muted:#6a7284;--line:#e3e6ec;--accent:#1e90ff;
--ok:#178a4c;--okbg:#e3f5ea;--no:#b4413a;--nobg:#fbe9e7;--thumb:#eceef2}
@media (prefers-color-scheme:dark){:root{--bg:#15181e;--card:#1f232b;--ink:#e8eaef;--muted:#9aa2b1;
--line:#2d323c;--okbg:#173a27;--nobg:#432320;--ok:#5fd394;--no:#f08a80;--thumb:#262a33}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Ubuntu,"Helvetica Neue",Arial,sans-serif}
.top{display:flex;flex-wrap:wrap;gap:16px 32px;align-items:center;justify-content:space-between;
padding:22px 28px 14px}
h1{margin:0;font-size:24px;font-weight:650;word-break:break-all}
.sub{margin:2px 0 0;color:var(--muted);font-size:13px}
.stats{display:flex;gap:10px;flex-wrap:wrap}
.stat{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:8px 16px;min-width:92px}
.stat b{display:block;font-size:22px;font-weight:650}
.stat span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.stat.ok b{color:var(--ok)}.stat.no b{color:var(--no)}
.tools{position:sticky;top:0;z-index:5;display:flex;flex-wrap:wrap;gap:10px 16px;align-items:center;
padding:10px 28px;background:color-mix(in srgb,var(--bg) 92%,transparent);backdrop-filter:blur(6px);
border-bottom:1px solid var(--line)}
.seg{display:inline-flex;background:var(--card);border:1px solid var(--line);border-radius:10px;padding:3px}
.seg button{border:0;background:none;color:var(--ink);font:inherit;padding:6px 12px;border-radius:7px;
cursor:pointer}
.seg button i{font-style:normal;color:var(--muted);font-size:12px;margin-left:4px}
.seg button.on{background:var(--accent);color:#fff}.seg button.on i{color:#dbeaff}
.pick{display:inline-flex;gap:6px;align-items:center;color:var(--muted);font-size:13px}
select,input[type=search]{font:inherit;color:var(--ink);background:var(--card);border:1px solid var(--line);
border-radius:8px;padding:6px 8px}
input[type=search]{min-width:200px}
.shown{color:var(--muted);font-size:13px;margin-left:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:16px;padding:18px 28px 40px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;overflow:hidden;
display:flex;flex-direction:column;transition:box-shadow .15s,transform .15s}
.card:hover{box-shadow:0 6px 18px rgba(0,0,0,.10);transform:translateY(-1px)}
.thumb{display:flex;align-items:center;justify-content:center;aspect-ratio:4/3;background:var(--thumb);
cursor:zoom-in}
.thumb img{width:100%;height:100%;object-fit:contain;display:block}
.card.missing .thumb img{opacity:.8}
.noimg{color:var(--muted);font-size:13px}
.meta{padding:10px 12px 12px;display:flex;flex-direction:column;gap:6px}
.name{font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.dir{font-weight:400;color:var(--muted)}
.row{display:flex;align-items:center;justify-content:space-between;gap:8px}
.badge{font-size:12px;font-weight:600;padding:2px 9px;border-radius:999px}
.badge.found{background:var(--okbg);color:var(--ok)}.badge.missing{background:var(--nobg);color:var(--no)}
.score{display:inline-flex;align-items:center;gap:6px;font-variant-numeric:tabular-nums;color:var(--muted);
font-size:13px}
.bar{width:56px;height:6px;border-radius:3px;background:var(--line);overflow:hidden;display:inline-block}
.bar span{display:block;height:100%;background:var(--accent)}
.chips{display:flex;flex-wrap:wrap;gap:4px;min-height:4px}
.chip{font-size:12px;background:var(--thumb);color:var(--ink);padding:1px 8px;border-radius:6px}
.chip.count{color:var(--muted)}
.empty{text-align:center;color:var(--muted);padding:40px}
[hidden]{display:none!important}
.viewer{position:fixed;inset:0;z-index:10;background:rgba(10,12,16,.92);display:flex;align-items:center;
justify-content:center}
.viewer figure{margin:0;display:flex;flex-direction:column;align-items:center;gap:10px;max-width:92vw}
.viewer img{max-width:88vw;max-height:82vh;object-fit:contain;border-radius:6px;background:#222}
.viewer figcaption{color:#eee;display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;justify-content:center}
.viewer .links a{color:#9fd0ff;margin-right:12px}
.viewer button{position:absolute;border:0;background:rgba(255,255,255,.12);color:#fff;cursor:pointer;
border-radius:999px;width:44px;height:44px;font-size:28px;line-height:1}
.viewer button:hover{background:rgba(255,255,255,.25)}
.close{top:16px;right:16px}.prev{left:16px;top:50%}.next{right:16px;top:50%}
"""

_JS = r"""
(function () {
  "use strict";
  var grid = document.getElementById("grid");
  var cards = Array.prototype.slice.call(grid.querySelectorAll(".card"));
  var state = {show: "all", concept: "", sort: "score-desc", q: ""};
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  cards.forEach(function (c) {
    c._score = parseFloat(c.dataset.score) || 0;
    c._concepts = JSON.parse(c.dataset.concepts || "[]");
    c._name = (c.dataset.stem || c.dataset.name).toLowerCase();
  });
  function byName(a, b) { return collator.compare(a.dataset.stem, b.dataset.stem); }
  var sorters = {
    "score-desc": function (a, b) { return (b._score - a._score) || byName(a, b); },
    "score-asc": function (a, b) { return (a._score - b._score) || byName(a, b); },
    "name-asc": byName,
    "name-desc": function (a, b) { return byName(b, a); }
  };
  var visible = [];
  function apply() {
    cards.sort(sorters[state.sort]);
    var frag = document.createDocumentFragment();
    visible = [];
    cards.forEach(function (c) {
      var ok = (state.show === "all" || c.dataset.status === state.show) &&
        (!state.concept || c._concepts.indexOf(state.concept) >= 0) &&
        (!state.q || c._name.indexOf(state.q) >= 0);
      c.hidden = !ok;
      if (ok) visible.push(c);
      frag.appendChild(c);
    });
    grid.appendChild(frag);
    document.getElementById("shown").textContent = "Showing " + visible.length + " of " + cards.length;
    document.getElementById("empty").hidden = visible.length > 0;
  }
  document.querySelectorAll(".seg button").forEach(function (b) {
    b.addEventListener("click", function () {
      state.show = b.dataset.show;
      document.querySelectorAll(".seg button").forEach(function (o) {
        o.classList.toggle("on", o === b); o.setAttribute("aria-pressed", o === b ? "true" : "false");
      });
      apply();
    });
  });
  document.getElementById("concept").addEventListener("change", function (e) {
    state.concept = e.target.value; apply();
  });
  document.getElementById("sort").addEventListener("change", function (e) { state.sort = e.target.value; apply(); });
  document.getElementById("search").addEventListener("input", function (e) {
    state.q = e.target.value.trim().toLowerCase(); apply();
  });

  var viewer = document.getElementById("viewer"), vImg = document.getElementById("v-img");
  var current = -1;
  function open(card) {
    current = visible.indexOf(card);
    var links = JSON.parse(card.dataset.links || "[]");
    vImg.src = card.dataset.full;
    vImg.alt = card.dataset.name;
    document.getElementById("v-name").textContent = card.dataset.name;
    var badge = document.getElementById("v-badge");
    badge.textContent = card.dataset.status === "found" ? "Found" : "Not found";
    badge.className = "badge " + card.dataset.status;
    document.getElementById("v-score").textContent = "score " + card._score.toFixed(2) +
      (card._concepts.length ? " · " + card._concepts.join(", ") : "");
    var box = document.getElementById("v-links");
    box.textContent = "";
    links.forEach(function (l) {
      var a = document.createElement("a");
      a.textContent = l[0]; a.href = l[1]; a.target = "_blank"; a.rel = "noopener";
      box.appendChild(a);
    });
    viewer.hidden = false;
  }
  function close() { viewer.hidden = true; vImg.removeAttribute("src"); }
  function step(d) {
    if (!visible.length) return;
    current = (current + d + visible.length) % visible.length;
    open(visible[current]);
  }
  grid.addEventListener("click", function (e) {
    var link = e.target.closest(".thumb");
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    open(link.closest(".card"));
  });
  document.getElementById("v-close").addEventListener("click", close);
  document.getElementById("v-prev").addEventListener("click", function () { step(-1); });
  document.getElementById("v-next").addEventListener("click", function () { step(1); });
  viewer.addEventListener("click", function (e) { if (e.target === viewer) close(); });
  document.addEventListener("keydown", function (e) {
    if (viewer.hidden) return;
    if (e.key === "Escape") close();
    else if (e.key === "ArrowLeft") step(-1);
    else if (e.key === "ArrowRight") step(1);
  });
  apply();
})();
"""
