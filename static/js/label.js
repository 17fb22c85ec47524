// Labeling page: hotkeys, taxonomy drill-down and search, time per item, image prefetch.
// The server renders everything; this file only turns keys into clicks and form submits.
(function () {
  "use strict";

  let started = performance.now();
  let level = "";       // parent id whose children are shown ("" = top level)
  let busy = false;     // a request is in flight: ignore keys so one press = one label
  let searchIndex = 0;
  const preloaded = new Map();

  const card = () => document.getElementById("item-card");
  const isMulti = () => card() && card().dataset.multi === "1";
  const buttons = () => Array.from(document.querySelectorAll("#label-form .class-btn"));
  const byId = (id) => buttons().find((b) => b.dataset.id === String(id));

  function preload(url) {
    if (!url || preloaded.has(url)) return preloaded.get(url);
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    preloaded.set(url, img);
    if (preloaded.size > 40) preloaded.delete(preloaded.keys().next().value);
    return img;
  }

  function initCard() {
    started = performance.now();
    level = "";
    busy = false;
    const img = document.getElementById("item-image");
    if (img && img.dataset.original) {
      // Thumbnail first (fast), then the full-resolution original as soon as it is decoded.
      const full = preload(img.dataset.original);
      const swap = () => { if (document.getElementById("item-image") === img) img.src = full.src; };
      if (full.complete && full.naturalWidth) swap(); else full.addEventListener("load", swap, { once: true });
    }
    document.querySelectorAll("link.prefetch").forEach((link) => {
      preload(link.href);
      preload(link.dataset.original);
    });
    showLevel("");
  }

  function showLevel(parent) {
    level = parent;
    const hierarchical = card() && card().dataset.hierarchical === "1";
    buttons().forEach((b) => {
      b.hidden = hierarchical && (b.dataset.parent || "") !== level;
    });
    const crumb = document.getElementById("class-crumb");
    if (crumb) {
      crumb.hidden = !level;
      const parentBtn = level ? byId(level) : null;
      crumb.querySelector("span").textContent = parentBtn ? parentBtn.dataset.path : "";
    }
  }

  function stampTime(form) {
    const ms = form.querySelector("input[name=ms]");
    if (ms) ms.value = String(Math.round(performance.now() - started));
  }

  function submit(form, submitter) {
    if (!form || busy) return;
    stampTime(form);
    busy = true;
    // htmx reads the submitting button from its click, so a chosen class button is clicked, not passed.
    if (submitter) submitter.click(); else form.requestSubmit();
  }

  function choose(btn) {
    if (!btn) return;
    if (btn.dataset.children === "1" && btn.dataset.id !== level) {
      showLevel(btn.dataset.id);
      return;
    }
    if (isMulti()) {
      const box = btn.querySelector("input[type=checkbox]");
      box.checked = !box.checked;
      btn.classList.toggle("on", box.checked);
    } else {
      submit(document.getElementById("label-form"), btn);
    }
  }

  // Type-ahead search over class paths.
  function searchResults(query) {
    const q = query.trim().toLowerCase();
    if (!q) return [];
    return buttons().filter((b) => b.dataset.path.toLowerCase().includes(q)).slice(0, 8);
  }

  function renderSearch() {
    const input = document.getElementById("class-search");
    const list = document.getElementById("search-results");
    if (!input || !list) return;
    const results = searchResults(input.value);
    list.replaceChildren();
    results.forEach((b, i) => {
      const li = document.createElement("li");
      li.textContent = b.dataset.path;  // textContent: class names are user text, never HTML
      li.dataset.id = b.dataset.id;
      li.className = i === searchIndex ? "active" : "";
      li.addEventListener("mousedown", (e) => { e.preventDefault(); pickSearch(b); });
      list.appendChild(li);
    });
    list.hidden = results.length === 0;
  }

  function pickSearch(btn) {
    const input = document.getElementById("class-search");
    if (isMulti()) {
      const box = btn.querySelector("input[type=checkbox]");
      box.checked = true;
      btn.classList.add("on");
      input.value = "";
      renderSearch();
    } else {
      input.blur();
      submit(document.getElementById("label-form"), btn);
    }
  }

  function onSearchKey(e) {
    const input = e.target;
    const results = searchResults(input.value);
    if (e.key === "ArrowDown") { searchIndex = Math.min(searchIndex + 1, results.length - 1); renderSearch(); e.preventDefault(); }
    else if (e.key === "ArrowUp") { searchIndex = Math.max(searchIndex - 1, 0); renderSearch(); e.preventDefault(); }
    else if (e.key === "Enter") { e.preventDefault(); if (results[searchIndex]) pickSearch(results[searchIndex]); }
    else if (e.key === "Escape") { input.value = ""; renderSearch(); input.blur(); }
  }

  function toggleOverlay(id, force) {
    const el = document.getElementById(id);
    if (el) el.hidden = force === undefined ? !el.hidden : !force;
  }

  document.addEventListener("keydown", (e) => {
    if (e.target && e.target.id === "class-search") { onSearchKey(e); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target && /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName) && e.target.type !== "checkbox") return;
    const key = e.key;
    if (key === "Escape") { toggleOverlay("shortcuts-overlay", false); toggleOverlay("instructions-overlay", false); return; }
    if (key === "?") { toggleOverlay("shortcuts-overlay"); e.preventDefault(); return; }
    if (key === "i") { toggleOverlay("instructions-overlay"); e.preventDefault(); return; }
    if (!card() || busy) return;
    if (key === "z") { e.preventDefault(); submit(document.getElementById("undo-form")); return; }
    if (!card().dataset.item) return;
    if (key === "/") { e.preventDefault(); const s = document.getElementById("class-search"); s.focus(); s.select(); return; }
    if (key === "s") { e.preventDefault(); submit(document.getElementById("skip-form")); return; }
    if (key === "Backspace") {
      e.preventDefault();
      const current = level ? byId(level) : null;
      showLevel(current ? current.dataset.parent || "" : "");
      return;
    }
    if (key === "Enter") {
      e.preventDefault();
      const form = document.getElementById("label-form");
      if (isMulti()) { submit(form); return; }
      const target = level ? byId(level) : byId(card().dataset.preselected);
      if (target) submit(form, target);
      return;
    }
    const btn = buttons().find((b) => b.dataset.key && b.dataset.key === key.toLowerCase());
    if (btn) { e.preventDefault(); choose(btn); }
  });

  document.addEventListener("click", (e) => {
    const btn = e.target.closest && e.target.closest("#label-form .class-btn");
    if (!btn) return;
    if (btn.dataset.children === "1" && btn.dataset.id !== level) { e.preventDefault(); showLevel(btn.dataset.id); return; }
    if (isMulti()) {
      // The label wraps its checkbox: let the browser toggle it, then mirror the state.
      setTimeout(() => btn.classList.toggle("on", btn.querySelector("input").checked), 0);
    }
  });
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("#class-crumb .up")) {
      const current = level ? byId(level) : null;
      showLevel(current ? current.dataset.parent || "" : "");
    }
  });
  document.addEventListener("submit", (e) => { if (e.target.closest("#item-card")) stampTime(e.target); }, true);
  document.addEventListener("input", (e) => { if (e.target.id === "class-search") { searchIndex = 0; renderSearch(); } });

  // Conflicts (409) and bad input (400) come back as a card with a message: show it.
  document.addEventListener("htmx:beforeSwap", (e) => {
    const status = e.detail.xhr.status;
    if (status === 400 || status === 409) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });
  document.addEventListener("htmx:afterSwap", (e) => { if (e.detail.target && card()) initCard(); });
  document.addEventListener("htmx:afterRequest", () => { busy = false; });
  document.addEventListener("htmx:sendError", () => { busy = false; });
  document.addEventListener("DOMContentLoaded", initCard);
})();
