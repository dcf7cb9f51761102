
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
