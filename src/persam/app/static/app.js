// persam's page: a thin client of /api/workspaces/... (no framework, no build step).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { wid: null, limits: null, personalized: false, items: [], segmenting: false };

// ------------------------------------------------------------------------------------------ errors
function showError(message) {
  $("#error-text").textContent = message;
  $("#error").hidden = false;
}
function clearError() { $("#error").hidden = true; }
$("#error-close").addEventListener("click", clearError);

async function api(method, url, body) {
  const options = { method, headers: {} };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (e) {
    throw new Error("The persam server cannot be reached. Is it still running?");
  }
  if (!response.ok) {
    let message = `The server answered ${response.status}.`;
    try {
      const data = await response.json();
      if (typeof data.detail === "string") message = data.detail;
      else if (Array.isArray(data.detail)) message = data.detail.map(d => d.msg || String(d)).join("; ");
    } catch (e) { /* not JSON */ }
    if (response.status === 404 && message.includes("session")) message += "";
    const err = new Error(message);
    err.status = response.status;
    throw err;
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("application/json") ? response.json() : response.blob();
}
const ws = path => `/api/workspaces/${state.wid}${path}`;
const sleep = ms => new Promise(r => setTimeout(r, ms));

async function pollJob(job, onProgress) {
  while (job.status === "queued" || job.status === "running") {
    onProgress(job);
    await sleep(400);
    job = await api("GET", ws(`/jobs/${job.id}`));
  }
  onProgress(job);
  if (job.status === "failed") throw new Error(job.error || "The work stopped with an error.");
  return job;
}

function setProgress(el, done, total, text) {
  el.hidden = false;
  $(".fill", el).style.width = total ? `${Math.round(100 * done / total)}%` : "0";
  $(".progress-text", el).textContent = text;
}

async function saveBlob(url, filename) {
  const blob = await api("GET", url);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 10000);
}

// ------------------------------------------------------------------------------------------ drop zones
function dropZone(label, input, onFiles) {
  const enabled = () => label.getAttribute("aria-disabled") !== "true";
  input.addEventListener("change", () => { if (input.files.length) onFiles([...input.files]); input.value = ""; });
  label.addEventListener("dragover", e => { e.preventDefault(); if (enabled()) label.classList.add("over"); });
  label.addEventListener("dragleave", () => label.classList.remove("over"));
  label.addEventListener("drop", e => {
    e.preventDefault();
    label.classList.remove("over");
    if (enabled() && e.dataTransfer.files.length) onFiles([...e.dataTransfer.files]);
  });
}

// ------------------------------------------------------------------------------------------ marking a photo
// Clicks (left: object, right or the "Not the object" tool: background) and a dragged box, sent to the server,
// which answers with SAM's mask (decoder only: the photo was encoded once when it arrived).
class PromptCanvas {
  constructor(root, slot, onMask) {
    this.root = root;
    this.slot = slot;
    this.onMask = onMask;
    this.canvas = $("canvas", root);
    this.ctx = this.canvas.getContext("2d");
    this.status = $(".status", root);
    this.busy = $(".busy-dot", root);
    this.tool = "object";
    this.seq = 0;
    this.reset();
    root.querySelectorAll(".tool").forEach(b => b.addEventListener("click", () => {
      this.tool = b.dataset.tool;
      root.querySelectorAll(".tool").forEach(o => o.classList.toggle("active", o === b));
    }));
    $("[data-action=undo]", root).addEventListener("click", () => {
      if (this.box && (!this.points.length || this.lastWasBox)) this.box = null;
      else this.points.pop();
      this.lastWasBox = false;
      this.send();
    });
    $("[data-action=clear]", root).addEventListener("click", () => { this.points = []; this.box = null; this.send(); });
    const c = this.canvas;
    c.addEventListener("contextmenu", e => e.preventDefault());
    c.addEventListener("pointerdown", e => {
      if (!this.info) return;
      c.setPointerCapture(e.pointerId);
      this.drag = { x: e.offsetX, y: e.offsetY, button: e.button, moved: false };
    });
    c.addEventListener("pointermove", e => {
      if (!this.drag) return;
      const d = this.drag;
      if (Math.hypot(e.offsetX - d.x, e.offsetY - d.y) > 6) d.moved = true;
      if (d.moved && d.button === 0) { d.x2 = e.offsetX; d.y2 = e.offsetY; this.draw(); }
    });
    c.addEventListener("pointerup", e => {
      const d = this.drag;
      this.drag = null;
      if (!d || !this.info) return;
      if (d.moved && d.button === 0) {
        const [ax, ay] = this.toImage(d.x, d.y), [bx, by] = this.toImage(e.offsetX, e.offsetY);
        if (Math.abs(bx - ax) > 2 && Math.abs(by - ay) > 2) {
          this.box = [Math.min(ax, bx), Math.min(ay, by), Math.max(ax, bx), Math.max(ay, by)];
          this.lastWasBox = true;
        }
      } else if (!d.moved) {
        const label = d.button === 2 || this.tool === "background" ? 0 : 1;
        const [x, y] = this.toImage(e.offsetX, e.offsetY);
        this.points.push([x, y, label]);
        this.lastWasBox = false;
      }
      this.send();
    });
    window.addEventListener("resize", () => this.fit());
  }

  reset() {
    this.points = [];
    this.box = null;
    this.mask = null;
    this.area = 0;
    this.root.dataset.maskArea = "0";
  }

  toImage(cx, cy) {
    const s = this.info.width / this.canvas.clientWidth;
    const x = Math.min(this.info.width - 1, Math.max(0, cx * s));
    const y = Math.min(this.info.height - 1, Math.max(0, cy * s));
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }

  async load(info, maskUrl) {
    this.info = info;
    this.reset();
    this.image = await loadImage(info.image);
    if (maskUrl) { this.mask = await loadImage(maskUrl); this.area = 1; this.root.dataset.maskArea = "1"; }
    this.root.hidden = false;
    this.fit();
    this.onMask(this.area > 0);
  }

  fit() {
    if (!this.image) return;
    const width = Math.min(this.root.clientWidth || 900, 1000);
    const scale = Math.min(1, width / this.image.naturalWidth, 640 / this.image.naturalHeight);
    const w = Math.round(this.image.naturalWidth * scale), h = Math.round(this.image.naturalHeight * scale);
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.draw();
  }

  draw() {
    const { ctx, canvas } = this;
    if (!this.image) return;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.image, 0, 0, canvas.width, canvas.height);
    if (this.mask) ctx.drawImage(this.mask, 0, 0, canvas.width, canvas.height);
    const k = canvas.width / this.info.width;  // image pixels -> canvas pixels
    const dpr = window.devicePixelRatio || 1;
    ctx.lineWidth = 2 * dpr;
    if (this.box) {
      const [x0, y0, x1, y1] = this.box.map(v => v * k);
      ctx.strokeStyle = "#facc15";
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    }
    if (this.drag && this.drag.moved && this.drag.x2 !== undefined) {
      const d = this.drag;
      ctx.setLineDash([6 * dpr, 4 * dpr]);
      ctx.strokeStyle = "#facc15";
      ctx.strokeRect(d.x * dpr, d.y * dpr, (d.x2 - d.x) * dpr, (d.y2 - d.y) * dpr);
      ctx.setLineDash([]);
    }
    for (const [x, y, label] of this.points) {
      ctx.beginPath();
      ctx.arc(x * k, y * k, 7 * dpr, 0, 2 * Math.PI);
      ctx.fillStyle = label ? "#16a34a" : "#dc2626";
      ctx.fill();
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    }
  }

  async send() {
    const seq = ++this.seq;
    this.draw();
    this.busy.hidden = false;
    try {
      const out = await api("POST", ws(`/canvas/${this.slot}/prompt`), { points: this.points, box: this.box });
      if (seq !== this.seq) return;  // a newer click is on its way
      this.mask = out.mask ? await loadImage(out.mask) : null;
      this.area = out.area;
      this.root.dataset.maskArea = String(out.area);
      const share = this.info ? (100 * out.area / (this.info.width * this.info.height)) : 0;
      if (!this.points.length && !this.box) this.status.textContent = "Click on your object, or drag a box around it.";
      else if (!out.area) this.status.textContent = "Nothing found there: try clicking in the middle of your object.";
      else this.status.textContent = `The blue area covers ${share.toFixed(1)} % of the photo (${out.seconds.toFixed(2)} s). `
        + "Click again to add parts, right-click to remove parts.";
      clearError();
      this.draw();
      this.onMask(out.area > 0);
    } catch (e) {
      if (seq === this.seq) { if (this.points.length) this.points.pop(); showError(e.message); this.draw(); }
    } finally {
      if (seq === this.seq) this.busy.hidden = true;
    }
  }
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("An image could not be shown."));
    img.src = src;
  });
}

// ------------------------------------------------------------------------------------------ 1-2: reference
const refCanvas = new PromptCanvas($("#ref-marker"), "reference", hasMask => {
  $("#personalize").disabled = !hasMask;
});

dropZone($("#ref-drop"), $("#ref-file"), async files => {
  const form = new FormData();
  form.append("file", files[0]);
  $("#ref-drop .drop-big").textContent = "Reading your photo…";
  try {
    const info = await api("POST", ws("/reference"), form);
    clearError();
    await refCanvas.load(info);
    refCanvas.status.textContent = "Click on your object, or drag a box around it. Right-click marks what is not your object.";
    $("#ref-drop .drop-big").textContent = "Drop another photo here";
  } catch (e) {
    showError(e.message);
    $("#ref-drop .drop-big").textContent = "Drop a photo here";
  }
});

$("#personalize").addEventListener("click", async () => {
  const button = $("#personalize");
  button.disabled = true;
  const status = $("#personalize-status");
  status.className = "status";
  status.textContent = "Learning your object…";
  try {
    const out = await api("POST", ws("/personalize"), { method: $("#method").value });
    state.personalized = true;
    status.className = "status good";
    status.textContent = `Learned in ${out.seconds.toFixed(1)} s. Now add photos below.`;
    const link = $("#download-concept");
    link.hidden = false;
    link.onclick = e => { e.preventDefault(); saveBlob(ws("/concept.persam"), "my-object.persam").catch(x => showError(x.message)); };
    link.href = "#";
    enableTargets(true);
    clearError();
    if (Object.keys(state.items).length || state.uploaded) await segmentAll();
  } catch (e) {
    status.textContent = "";
    showError(e.message);
  } finally {
    button.disabled = refCanvas.area <= 0;
  }
});

// ------------------------------------------------------------------------------------------ 3: targets
function enableTargets(on) {
  $("#targets-drop").setAttribute("aria-disabled", on ? "false" : "true");
  $("#targets-file").disabled = !on;
}

dropZone($("#targets-drop"), $("#targets-file"), async files => {
  if (!state.personalized) { showError("First mark your object and press Personalize."); return; }
  const progress = $("#targets-progress");
  const skipped = $("#targets-skipped");
  skipped.replaceChildren();
  let sent = 0, bad = 0;
  for (const file of files) {
    setProgress(progress, sent, files.length * 2, `Uploading ${sent + 1} of ${files.length}…`);
    const form = new FormData();
    form.append("file", file);
    try {
      await api("POST", ws("/targets"), form);
      state.uploaded = true;
    } catch (e) {
      bad++;
      const li = document.createElement("li");
      li.textContent = `${file.name}: ${e.message}`;
      skipped.appendChild(li);
    }
    sent++;
  }
  if (bad) showError(`${bad} of ${files.length} file(s) could not be used (see the list below the drop area).`);
  else clearError();
  if (bad < files.length) await segmentAll(files.length);
  else progress.hidden = true;
});

async function segmentAll(uploading = 0) {
  if (state.segmenting) return;
  state.segmenting = true;
  $("#download-zip").disabled = true;  // the results are final once the job (photos, then the album check) ends
  const progress = $("#targets-progress");
  try {
    for (let round = 0; round < 3; round++) {
      let job = await api("POST", ws("/segment"));
      let shown = 0;
      await pollJob(job, j => {
        const offset = uploading;
        setProgress(progress, offset + j.done, offset + Math.max(j.total, 1),
          j.total ? `Searching photo ${Math.min(j.done + 1, j.total)} of ${j.total}…` : "Starting…");
        if (j.done !== shown) { shown = j.done; refreshResults(); }
      });
      const res = await refreshResults();
      if (!res.pending) break;
    }
    setProgress(progress, 1, 1, "Done.");
    setTimeout(() => { if (!state.segmenting) progress.hidden = true; }, 1500);
  } catch (e) {
    showError(e.message);
    progress.hidden = true;
  } finally {
    state.segmenting = false;
    $("#download-zip").disabled = false;
  }
}

async function refreshResults() {
  const res = await api("GET", ws("/results"));
  state.items = res.items;
  renderGallery();
  return res;
}

function renderGallery() {
  const items = [...state.items];
  const order = $("#sort").value;
  const byName = (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true });
  if (order === "score-desc") items.sort((a, b) => b.score - a.score || byName(a, b));
  else if (order === "score-asc") items.sort((a, b) => a.score - b.score || byName(a, b));
  else if (order === "found") items.sort((a, b) => (b.present - a.present) || b.score - a.score);
  else items.sort(byName);
  const found = items.filter(i => i.present).length;
  $("#gallery-bar").hidden = !items.length;
  $("#gallery-count").textContent = `${items.length} photo${items.length === 1 ? "" : "s"}: `
    + `${found} found, ${items.length - found} not found`;
  const gallery = $("#gallery");
  gallery.replaceChildren(...items.map(card));
}

function card(item) {
  const el = document.createElement("article");
  el.className = `card ${item.present ? "found" : "absent"}`;
  el.dataset.name = item.name;
  el.dataset.score = String(item.score);
  el.dataset.present = String(item.present);
  const a = document.createElement("a");
  a.className = "thumb";
  a.href = item.overlay;
  a.target = "_blank";
  a.rel = "noopener";
  const img = document.createElement("img");
  img.src = item.overlay;
  img.alt = `${item.name}: ${item.present ? "found" : "not found"}`;
  img.loading = "lazy";
  a.appendChild(img);
  const meta = document.createElement("div");
  meta.className = "meta";
  const name = document.createElement("div");
  name.className = "name";
  name.title = item.name;
  name.textContent = item.name;
  const line = document.createElement("div");
  line.className = "line";
  const badge = document.createElement("span");
  badge.className = `badge ${item.present ? "found" : "absent"}`;
  badge.textContent = item.present ? "Found" : "Not found";
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = `match ${(100 * (item.score || 0)).toFixed(0)} %`;
  line.append(badge, score);
  const bar = document.createElement("div");
  bar.className = "scorebar";
  const fill = document.createElement("div");
  fill.style.width = `${Math.round(100 * (item.score || 0))}%`;
  bar.appendChild(fill);
  meta.append(name, line, bar);
  if (item.present) {
    // "not my object": what was found here becomes a negative example, and the photos are searched again
    const wrong = document.createElement("button");
    wrong.type = "button";
    wrong.className = "not-mine";
    wrong.textContent = "Not my object";
    wrong.title = "persam found something else here: teach it that this is not your object";
    wrong.addEventListener("click", () => excludePhoto(item, wrong));
    meta.append(wrong);
  } else if (item.rejected_by || item.unlike_album) {
    const why = document.createElement("div");
    why.className = "why";
    why.textContent = item.rejected_by ? `looks like ${item.rejected_by}, marked not yours`
      : "found, but much less like it than its best photos here";
    meta.append(why);
  }
  el.append(a, meta);
  return el;
}

async function excludePhoto(item, button) {
  if (state.segmenting) return;
  button.disabled = true;
  try {
    await api("POST", ws(`/targets/${item.id}/exclude`));
    clearError();
    await segmentAll();
  } catch (e) {
    showError(e.message);
    button.disabled = false;
  }
}

$("#sort").addEventListener("change", renderGallery);
$("#download-zip").addEventListener("click", async () => {
  const button = $("#download-zip");
  button.disabled = true;
  const text = button.textContent;
  button.textContent = "Preparing the zip…";
  try { await saveBlob(ws("/download.zip"), "persam-results.zip"); clearError(); }
  catch (e) { showError(e.message); }
  finally { button.disabled = false; button.textContent = text; }
});

// ------------------------------------------------------------------------------------------ 4: video
const videoCanvas = new PromptCanvas($("#video-marker"), "video", hasMask => { $("#track").disabled = !hasMask; });

dropZone($("#video-drop"), $("#video-file"), async files => {
  const form = new FormData();
  form.append("file", files[0]);
  $("#video-drop .drop-big").textContent = "Reading your video…";
  $("#video-result").hidden = true;
  try {
    const info = await api("POST", ws("/video"), form);
    clearError();
    await videoCanvas.load(info, info.mask);
    videoCanvas.status.textContent = info.guessed
      ? `${info.frames} frames. The blue area is where persam found your object on the first frame: click to correct it, or press Track.`
      : `${info.frames} frames. Click on your object in this first frame, or drag a box around it.`;
    $("#video-drop .drop-big").textContent = "Drop another video here";
  } catch (e) {
    showError(e.message);
    $("#video-drop .drop-big").textContent = "Drop a video here";
  }
});

$("#track").addEventListener("click", async () => {
  const button = $("#track");
  button.disabled = true;
  const progress = $("#video-progress");
  $("#video-result").hidden = true;
  try {
    const job = await api("POST", ws("/video/track"));
    await pollJob(job, j => setProgress(progress, j.done, j.total,
      j.status === "done" ? "Done." : `Frame ${j.done} of ${j.total}…`));
    const video = $("#video-preview");
    video.src = ws(`/video/preview.mp4?t=${Date.now()}`);
    $("#video-result").hidden = false;
    clearError();
  } catch (e) {
    showError(e.message);
  } finally {
    button.disabled = videoCanvas.area <= 0;
  }
});
$("#download-video").addEventListener("click", () => saveBlob(ws("/video/masks.zip"), "video-masks.zip")
  .catch(e => showError(e.message)));

// ------------------------------------------------------------------------------------------ session
async function start() {
  try {
    const out = await api("POST", "/api/workspaces");
    state.wid = out.id;
    state.limits = out.limits;
    document.body.dataset.ready = "true";
  } catch (e) {
    showError(`persam could not start a session: ${e.message}`);
  }
}
// Leaving the page deletes its uploads and results on the server (they also expire after an idle hour).
window.addEventListener("pagehide", () => {
  if (state.wid) navigator.sendBeacon(`/api/workspaces/${state.wid}/delete`);
});
start();
