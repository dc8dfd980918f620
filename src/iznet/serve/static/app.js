// IZ*Net page: label a photo, enrol people, list / rename / remove them. Talks to /api only.
// Text from the server (names, messages) is always set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

async function api(method, url, body) {
  const opts = { method };
  if (body instanceof FormData) opts.body = body;
  else if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers = { "Content-Type": "application/json" };
  }
  let resp;
  try {
    resp = await fetch(url, opts);
  } catch (e) {
    throw new Error("the server cannot be reached (" + e.message + ")");
  }
  let data = null;
  try { data = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) throw new Error((data && data.error) || `HTTP ${resp.status}`);
  return data;
}

function setStatus(node, text, kind = "") {
  node.className = "status" + (kind ? " " + kind : "");
  node.textContent = text;
}

const fmt = (x, d = 2) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
let people = [];

// ------------------------------------------------------------------ health
async function refreshHealth() {
  const node = $("health");
  try {
    const h = await api("GET", "/api/health");
    node.classList.remove("bad");
    node.textContent = `Gallery: ${plural(h.people, "person", "people")}, ${plural(h.images, "photo", "photos")}` +
      ` · embedder ${h.embedder}${h.embedder_trained ? "" : " (untrained!)"} · detector ${h.detector}`;
    document.body.dataset.maxFiles = h.limits.max_files;
  } catch (e) {
    node.classList.add("bad");
    node.textContent = "Server problem: " + e.message;
  }
}

// ------------------------------------------------------------------ labelling
async function labelFile(file) {
  if (!file) return;
  const status = $("label-status");
  setStatus(status, `Looking for faces in ${file.name || "the photo"}…`);
  $("drop").classList.add("compact");
  const form = new FormData();
  form.append("file", file, file.name || "pasted.png");
  try {
    const res = await api("POST", "/api/label?image=plain", form);
    showResult(res);
    setStatus(status, "");
  } catch (e) {
    $("result").hidden = true;
    setStatus(status, e.message, "bad");
  }
}

function showResult(res) {
  const [W, H] = res.image_size;
  const img = $("result-img");
  // a small photo (a face crop, a thumbnail) is shown at up to twice its size, never beyond 480 px
  const up = Math.min(2, 480 / Math.max(...res.preview_size));
  img.style.width = up > 1 ? `${Math.round(res.preview_size[0] * up)}px` : "";
  img.src = `data:${res.image_type};base64,${res.image}`;
  const boxes = $("boxes");
  const list = $("faces");
  boxes.replaceChildren();
  list.replaceChildren();
  // number faces left to right, the way one reads a group photo
  const faces = res.faces.map((f, i) => ({ ...f, i })).sort((a, b) => a.box[0] - b.box[0] || a.box[1] - b.box[1]);
  faces.forEach((f, n) => {
    const known = f.name !== "unknown";
    const [x1, y1, x2, y2] = f.box;
    const label = known ? f.name : "unknown";
    const box = el("div", { class: "box" + (known ? "" : " unknown") + (y1 / H < 0.06 ? " below" : "") +
                            (x1 / W > 0.6 ? " right" : ""),
                            "data-face": n });
    Object.assign(box.style, {
      left: `${(100 * x1) / W}%`, top: `${(100 * y1) / H}%`,
      width: `${(100 * (x2 - x1)) / W}%`, height: `${(100 * (y2 - y1)) / H}%`,
    });
    box.append(el("span", { class: "tag" }, String(n + 1), el("span", { class: "tag-name", text: ` · ${label}` })));
    boxes.append(box);

    const detail = [];
    if (!known && f.nearest) detail.push(`closest: ${f.nearest}`);
    if (f.second_name) detail.push(`next: ${f.second_name} ${fmt(f.second_distance)}`);
    if (!detail.length) detail.push(f.distance === null ? "the gallery is empty" : "no one else to compare");
    const dist = f.distance === null ? "" : fmt(f.distance);
    const item = el("li", { class: known ? "known" : "unknown", "data-face": n, tabindex: "0",
                            title: `detector score ${fmt(f.det_score)}` },
      el("span", { class: "badge", text: String(n + 1) }),
      el("span", { class: "face-name", text: f.name }),
      el("span", { class: "face-dist", text: dist, title: f.nearest ? `distance to ${f.nearest}` : "" }),
      el("span", { class: "face-detail", text: detail.join(" · ") }));
    const hot = (on) => { box.classList.toggle("hot", on); item.classList.toggle("hot", on); };
    item.addEventListener("mouseenter", () => hot(true));
    item.addEventListener("mouseleave", () => hot(false));
    item.addEventListener("focus", () => hot(true));
    item.addEventListener("blur", () => hot(false));
    list.append(item);
  });

  const named = faces.filter((f) => f.name !== "unknown").map((f) => f.name);
  const unknown = res.faces.length - named.length;
  let summary;
  if (!res.faces.length) summary = "No face found in this photo.";
  else if (!named.length) summary = `${plural(unknown, "face", "faces")}, ${unknown === 1 ? "not" : "none"} recognised`;
  else {
    const parts = [];
    if (named.length) parts.push([...new Set(named)].join(", "));
    if (unknown) parts.push(plural(unknown, "unknown face", "unknown faces"));
    summary = `${plural(res.faces.length, "face", "faces")}: ${parts.join(" and ")}`;
  }
  $("summary").textContent = summary;
  const warn = $("label-warnings");
  warn.replaceChildren(...res.warnings.map((w) => el("li", { text: w })));
  $("result").hidden = false;
  fitTags();
}

// Faces drawn smaller than a name tag (a crowded group photo, a narrow screen) get just their number;
// the list says who they are, and hovering a list entry shows that face's name.
function fitTags() {
  const img = $("result-img");
  const boxes = [...document.querySelectorAll("#boxes .box")];
  const smallest = Math.min(...boxes.map((b) => b.getBoundingClientRect().width));
  $("stage").classList.toggle("numbers-only", img.clientWidth > 0 && smallest < 70);
}

function setUpDrop() {
  const drop = $("drop");
  const input = $("photo-input");
  input.addEventListener("change", () => { labelFile(input.files[0]); input.value = ""; });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => {
    const file = [...(e.dataTransfer?.files || [])][0];
    if (file) labelFile(file);
  });
  // a photo dropped anywhere else on the page should not navigate away from it
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  document.addEventListener("paste", (e) => {
    if (e.target instanceof HTMLInputElement) return;
    const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) labelFile(file);
  });
}

// ------------------------------------------------------------------ enrolment
function existingPerson(name) {
  const key = name.trim().toLowerCase();
  return people.find((p) => p.name.toLowerCase() === key);
}

function updateEnrolButton() {
  const p = existingPerson($("enrol-name").value);
  $("enrol-button").textContent = p ? `Add photos to ${p.name}` : "Enrol";
}

async function enrol(e) {
  e.preventDefault();
  const status = $("enrol-status");
  const name = $("enrol-name").value.trim();
  const files = [...$("enrol-files").files];
  if (!name) return setStatus(status, "Give the person's name.", "bad");
  if (!files.length) return setStatus(status, "Choose one or more photos of them.", "bad");
  const max = Number(document.body.dataset.maxFiles || 0);
  if (max && files.length > max) return setStatus(status, `At most ${max} photos at a time.`, "bad");
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const existing = existingPerson(name);
  let url = "/api/people";
  if (existing) url = `/api/people/${encodeURIComponent(existing.name)}/images`;
  else form.append("name", name);
  const button = $("enrol-button");
  button.disabled = true;
  setStatus(status, `Enrolling ${name} from ${plural(files.length, "photo", "photos")}…`);
  try {
    const r = await api("POST", url, form);
    const verb = r.created ? "Enrolled" : "Added to";
    setStatus(status, `${verb} ${r.name}: ${plural(r.added.length, "photo", "photos")} added` +
      (r.duplicates.length ? `, ${r.duplicates.length} already there` : "") + ".", "ok");
    const notes = [
      ...r.skipped.map((s) => `${s.file}: ${s.reason} (skipped)`),
      ...r.several_faces.map((s) => `${s.file}: ${s.faces} faces, the clearest one was used`),
    ];
    if (notes.length) status.append(el("ul", {}, ...notes.map((n) => el("li", { text: n }))));
    $("enrol-form").reset();
    await refreshPeople();
  } catch (err) {
    setStatus(status, err.message, "bad");
  } finally {
    button.disabled = false;
    updateEnrolButton();
  }
}

// ------------------------------------------------------------------ people
async function refreshPeople() {
  try {
    const r = await api("GET", "/api/people");
    people = r.people;
    renderPeople();
  } catch (e) {
    setStatus($("people-status"), e.message, "bad");
  }
  refreshHealth();
  updateEnrolButton();
}

function renderPeople() {
  const body = $("people-body");
  body.replaceChildren();
  $("people-count").textContent = people.length ? `(${people.length})` : "";
  $("people-empty").hidden = people.length > 0;
  $("people").hidden = people.length === 0;
  for (const p of people) {
    const added = p.created
      ? new Date(p.created).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" }) : "";
    const row = el("tr", { "data-name": p.name },
      el("td", { class: "who" }, el("span", { class: "name", text: p.name }),
        el("span", { class: "when", text: added ? `added ${added}` : "" })),
      el("td", { class: "num", text: String(p.n_images) }),
      el("td", { class: "actions" },
        el("button", { class: "quiet", type: "button", text: "Rename", onclick: () => startRename(row, p) }),
        el("button", { class: "danger", type: "button", text: "Remove", onclick: (e) => remove(e.target, p) })));
    body.append(row);
  }
}

function startRename(row, p) {
  const cell = row.querySelector("td.who");
  const input = el("input", { type: "text", maxlength: "64", "aria-label": `New name for ${p.name}` });
  input.value = p.name;
  const done = async (save) => {
    const value = input.value.trim();
    if (!save || !value || value === p.name) return renderPeople();
    try {
      const r = await api("POST", `/api/people/${encodeURIComponent(p.name)}/rename`, { new_name: value });
      await refreshPeople();
      setStatus($("people-status"), `Renamed ${p.name} to ${r.name}.`, "ok");
    } catch (e) {
      setStatus($("people-status"), e.message, "bad");
      input.focus();
    }
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") done(true);
    else if (e.key === "Escape") done(false);
  });
  cell.replaceChildren(input);
  const actions = row.querySelector("td.actions");
  actions.replaceChildren(
    el("button", { class: "quiet", type: "button", text: "Save", onclick: () => done(true) }),
    el("button", { class: "quiet", type: "button", text: "Cancel", onclick: () => done(false) }));
  input.focus();
  input.select();
}

async function remove(button, p) {
  // two clicks: the first arms the button, the second removes (no modal dialog)
  if (!button.classList.contains("armed")) {
    button.classList.add("armed");
    button.textContent = "Really remove?";
    setTimeout(() => { if (button.isConnected) { button.classList.remove("armed"); button.textContent = "Remove"; } }, 4000);
    return;
  }
  button.disabled = true;
  try {
    const r = await api("DELETE", `/api/people/${encodeURIComponent(p.name)}`);
    await refreshPeople();
    setStatus($("people-status"), `Removed ${r.name} (${plural(r.images_removed, "photo", "photos")}).`, "ok");
  } catch (e) {
    setStatus($("people-status"), e.message, "bad");
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ start
document.addEventListener("DOMContentLoaded", () => {
  setUpDrop();
  $("result-img").addEventListener("load", fitTags);
  window.addEventListener("resize", fitTags);
  $("enrol-form").addEventListener("submit", enrol);
  $("enrol-name").addEventListener("input", updateEnrolButton);
  refreshPeople();
});
