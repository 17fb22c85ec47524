// Review page: a accept, r reject, c then a class key to correct (multi-label: toggle the given set, Enter saves),
// n / j next, h the model's heatmap, Esc cancels a correction. In a taxonomy each level has its own keys: a class
// with subclasses opens them, Backspace goes back, Enter picks the level's own class; / searches every class by path
// (Enter picks the first match, multi-label: ticks or unticks it; Enter on an empty search does what Enter does
// outside it; / again starts a new search; Esc leaves the search, keeping the ticks).
// The server renders every card (and the reason tabs, out of band); this file turns keys into submits.
// z undoes the reviewer's last verdict (the card's Undo form; labeling/views/review_undo.py).
// As on the labeling page (static/js/label.js), a verdict acts only on a task the reviewer can have seen: not while
// the next card's image loads, nor within REACTION_MS of it replacing the last one (a double tap racing the card).
// b switches the background behind a transparent image, as on the labeling page and with the same stored choice.
(function () {
  "use strict";

  const ClassKeys = window.LabelloopClassKeys;  // static/js/class-keys.js, loaded first
  let correcting = false;
  let busy = false;
  let level = "";  // parent id whose subclasses are shown in correction mode ("" = top level)
  let searchIndex = 0;
  const Reaction = window.LabelloopReaction;  // static/js/app.js, loaded first
  const REACTION_MS = Reaction.MS;
  // performance.now() when the card's image was displayed; null while it loads; 0 for the page's first card.
  let shownAt = 0;
  let shownTask = null;  // the task shownAt is about

  const card = () => document.getElementById("review-card");
  const form = () => document.getElementById("verdict-form");
  const fieldset = () => document.getElementById("correct-classes");
  const isMulti = () => card() && card().dataset.multi === "1";
  const isHierarchical = () => card() && card().dataset.hierarchical === "1";
  const buttons = () => (fieldset() ? Array.from(fieldset().querySelectorAll(".class-btn")) : []);
  const byId = (id) => buttons().find((b) => b.dataset.id === String(id));
  const searchInput = () => document.getElementById("correct-search");
  // Heatmap overlays (static/js/explain.js): their polls and swaps are not the card's.
  const Explain = window.LabelloopExplain;
  const isExplain = (event) => Boolean(Explain && Explain.isExplainEvent(event));

  function typing(event) {
    const t = event.target;
    return t && (t.tagName === "INPUT" && (t.type === "text" || t.type === "search") || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }

  // --- the image's background (b): the labeling page's backgrounds and stored choice (stage-background.js) ---
  const Background = window.LabelloopBackground;
  const page = () => document.querySelector(".review-page");
  function showBackground() {
    const name = Background.current();
    if (page()) page().dataset.bg = name;
    const label = document.getElementById("review-bg-name");
    if (label) label.textContent = Background.title(name);
  }
  function nextBackground() {
    Background.next();
    showBackground();
  }
  function markLight() {
    const img = document.getElementById("review-image");
    if (!img) return;
    const check = () => { if (img.naturalWidth && Background.lightDrawing(img)) img.dataset.light = "1"; };
    if (img.complete) check(); else img.addEventListener("load", check, { once: true });
  }

  // The card's image is loading, or replaced the last one less than REACTION_MS ago.
  const tooSoon = () => shownAt === null || (shownAt > 0 && performance.now() - shownAt < REACTION_MS);
  // The card says whether it takes verdicts now (data-ready="1"): for people reading the DOM, and for the browser tests.
  function markReady() {
    if (card()) card().dataset.ready = !busy && !tooSoon() ? "1" : "";
  }

  function watchShown() {
    const task = card() ? card().dataset.task : "";
    // The same task again (the card re-rendered with an error message): the reviewer has seen it already.
    if (task && task === shownTask && shownAt !== null) { markReady(); return; }
    shownTask = task;
    const img = document.getElementById("review-image");
    shownAt = null;
    const mark = () => {
      if (document.getElementById("review-image") !== img || shownAt !== null) return;
      shownAt = performance.now();
      markReady();
      setTimeout(markReady, REACTION_MS + 1);
    };
    if (!img || img.complete) mark();
    else { img.addEventListener("load", mark, { once: true }); img.addEventListener("error", mark, { once: true }); }
    markReady();
  }

  // A verdict key not applied: said in the corner (outside the card, which a response replaces), for 4 s.
  let noteTimer = null;
  function refuse(verdict) {
    const note = document.getElementById("review-key-note");
    if (!note) return;
    const what = verdict.charAt(0).toUpperCase() + verdict.slice(1);
    note.dataset.refused = String(Number(note.dataset.refused || 0) + 1);
    note.textContent = busy
      ? `${what} not applied: the verdict before it was still being saved.`
      : shownAt === null
        ? `${what} not applied: the image was not on screen yet. Press it again.`
        : Reaction.note(what, "task", performance.now() - shownAt);
    note.hidden = false;
    clearTimeout(noteTimer);
    noteTimer = setTimeout(() => { note.hidden = true; }, 4000);
  }

  // h: the card's heatmap shown or hidden; on a card without one, why not (#review-explain-missing), in the key note.
  const hasHeatmap = () => Boolean(Explain && card() && card().querySelector(".explain-layer"));
  function heatmapKey() {
    if (hasHeatmap()) { Explain.toggle(); return; }
    const note = document.getElementById("review-key-note");
    if (!note) return;
    const why = document.getElementById("review-explain-missing");
    note.textContent = (why && why.textContent.trim()) || "No heatmap on this card.";
    note.hidden = false;
    clearTimeout(noteTimer);
    noteTimer = setTimeout(() => { note.hidden = true; }, 4000);
  }
  // The footer advertises h only while the card has a heatmap.
  function heatmapHint() {
    const hint = document.getElementById("review-h-hint");
    if (hint) hint.hidden = !hasHeatmap();
  }

  function submit(verdict) {
    const f = form();
    if (!f) return;
    if (busy || tooSoon()) { refuse(verdict); return; }
    const button = f.querySelector(`button[type=submit][value="${verdict}"]`);
    if (!button) return;
    busy = true;
    markReady();
    // The hidden field carries the verdict whether or not the submitter button's value is sent along.
    f.querySelector("#verdict-value").value = verdict;
    f.requestSubmit(button);
  }

  // z: the card's Undo form withdraws the verdict it names, or has the server say why there is none
  // (labeling/views/review_undo.py), under the verdicts' rule: typed ahead of a card, it is not applied.
  function undo() {
    const f = document.getElementById("review-undo-form");
    if (busy || tooSoon()) { refuse("undo"); return; }
    if (!f) return;
    busy = true;
    markReady();
    f.requestSubmit();
  }

  function showLevel(parent) {
    level = parent;
    buttons().forEach((b) => { b.hidden = isHierarchical() && (b.dataset.parent || "") !== level; });
    const crumb = document.getElementById("correct-crumb");
    if (crumb) {
      crumb.hidden = !level;
      crumb.querySelector("span").textContent = level && byId(level) ? byId(level).dataset.path : "";
    }
  }

  function setCorrecting(on) {
    const fs = fieldset();
    if (!fs) return;
    correcting = on;
    fs.hidden = !on;
    document.getElementById("correct-toggle")?.classList.toggle("on", on);
    // Multi-label: a correction edits the given set, so it starts from the given classes.
    buttons().forEach((b) => mark(b, on && isMulti() && b.classList.contains("given")));
    showWillSave();
    if (!on) {
      const input = searchInput();
      if (input) { input.value = ""; renderSearch(); }
    }
    showLevel("");
  }

  function mark(btn, checked) {
    btn.querySelector("input[type=checkbox]").checked = checked;
    btn.classList.toggle("on", checked);
  }

  // Multi-label: the set a save sends, in words beside the save button (a ticked chip among 120 is easy to miss).
  function showWillSave() {
    const line = document.getElementById("correct-summary");
    if (!line) return;
    const names = buttons().filter((b) => b.classList.contains("on")).map((b) => b.dataset.path);
    line.textContent = names.length ? `Will save: ${names.join(", ")}` : "Will save: no class yet. Tick at least one.";
  }

  // Pick exactly this class (single-label) and save, or toggle it (multi-label).
  function pick(btn) {
    if (isMulti()) { mark(btn, !btn.classList.contains("on")); showWillSave(); return; }
    buttons().forEach((b) => mark(b, b === btn));
    submit("correct");
  }

  // A key or click on a class: open its subclasses first, as on the labeling page.
  function choose(btn) {
    if (btn.dataset.children === "1" && btn.dataset.id !== level) { showLevel(btn.dataset.id); return; }
    pick(btn);
  }

  // Only the classes shown now have live keys: one level at a time.
  const classByKey = (key) => ClassKeys.visibleByKey(buttons(), key);

  // Type-ahead search over class paths (every level).
  const searchResults = (query) => ClassKeys.search(buttons(), query);

  function renderSearch() {
    const input = searchInput();
    const list = document.getElementById("correct-results");
    if (!input || !list) return;
    const results = searchResults(input.value);
    searchIndex = Math.min(searchIndex, Math.max(results.length - 1, 0));
    ClassKeys.renderResults(list, results, searchIndex, pickSearch);
  }

  function pickSearch(btn) {
    const input = searchInput();
    input.value = "";
    searchIndex = 0;
    renderSearch();
    if (!isMulti()) input.blur();
    pick(btn);
  }

  function onSearchKey(event) {
    const results = searchResults(event.target.value);
    const moved = ClassKeys.step(event.key, searchIndex, results.length);
    if (moved !== null) { searchIndex = moved; renderSearch(); event.preventDefault(); }
    else if (event.key === "Enter") {
      event.preventDefault();
      if (event.repeat) return;  // a held Enter must not pick and then save
      // The search empty, Enter does what it does outside it: multi-label saves the ticked set, as the grid's finder.
      if (!event.target.value.trim()) correctionKey(event);
      else if (results[searchIndex]) pickSearch(results[searchIndex]);
    }
    // "/" in the search starts a new search (its text selected, so the next word replaces it), never a slash typed.
    else if (event.key === "/") { event.preventDefault(); event.target.select(); }
    else if (event.key === "Escape") { event.target.value = ""; searchIndex = 0; renderSearch(); event.target.blur(); event.preventDefault(); }
  }

  function next() {
    const c = card();
    if (c && c.dataset.task) window.location.assign(c.dataset.next);
  }

  // A correction starts under the verdicts' rule: typed ahead, its class keys would tick classes on a card not yet
  // seen (multi-label: a set that a later Enter saves). Refused, the keys after it are no review keys and do nothing.
  function startCorrecting() {
    if (busy || tooSoon()) { refuse("correct"); return false; }
    setCorrecting(true);
    return true;
  }

  function correctionKey(event) {
    const key = event.key;
    if (key === "Escape") { setCorrecting(false); return true; }
    if (key === "/") { searchInput()?.focus(); return true; }
    if (key === "Backspace") {
      const current = level ? byId(level) : null;
      showLevel(current ? current.dataset.parent || "" : "");
      return true;
    }
    if (key === "Enter") {
      if (isMulti()) { submit("correct"); return true; }
      const current = level ? byId(level) : null;
      if (current) pick(current);
      return Boolean(current);
    }
    const btn = classByKey(key.toLowerCase());
    if (btn) { choose(btn); return true; }
    return false;
  }

  document.addEventListener("keydown", (event) => {
    if (event.target && event.target.id === "correct-search") { onSearchKey(event); return; }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    if (correcting) {
      if (correctionKey(event)) event.preventDefault();
      // b is no class's key (labeling.selectors.keys.PAGE_KEYS): it switches the background while correcting too.
      else if (event.key.toLowerCase() === "b") { nextBackground(); event.preventDefault(); }
      return;
    }
    const key = event.key.toLowerCase();
    if (key === "a") { submit("accept"); event.preventDefault(); }
    else if (key === "r") { submit("reject"); event.preventDefault(); }
    else if (key === "c") { startCorrecting(); event.preventDefault(); }
    else if (key === "/" && fieldset()) { if (startCorrecting()) searchInput()?.focus(); event.preventDefault(); }
    else if (key === "n" || key === "j") { next(); event.preventDefault(); }
    else if (key === "z") { undo(); event.preventDefault(); }
    else if (key === "h") { heatmapKey(); event.preventDefault(); }
    else if (key === "b") { nextBackground(); event.preventDefault(); }
  });

  document.addEventListener("input", (event) => {
    if (event.target && event.target.id === "correct-search") { searchIndex = 0; renderSearch(); }
  });

  document.addEventListener("click", (event) => {
    const toggle = event.target.closest("#correct-toggle");
    if (toggle) setCorrecting(!correcting);
    // A click on a class does what its key does (the checkbox inside is only the form's carrier).
    const classBtn = event.target.closest("#correct-classes .class-btn");
    if (classBtn) { event.preventDefault(); choose(classBtn); }
    const button = event.target.closest("#verdict-form button[type=submit][name=verdict]");
    if (button) document.getElementById("verdict-value").value = button.value;
  });

  // A double click's second click landing on the next task's card gives no verdict on it (static/js/app.js).
  window.LabelloopGuardDoubleClick("#review-card", () => (card() ? card().dataset.task : ""), () => {
    if (!card() || card().querySelector(".double-click-note")) return;
    const note = document.createElement("div");
    note.className = "notice notice-error double-click-note";
    note.setAttribute("role", "alert");
    note.textContent = "Second click of a double click not applied: it landed on the next task. Click once per task.";
    card().prepend(note);
  });

  // The correction classes stay on the page from task to task (the server sends them once:
  // labeling/views/class_list.py); each card marks its own given classes on them.
  const shownClasses = ClassKeys.listKeeper("review-class-list");
  function markGiven() {
    const fs = fieldset();
    if (!fs) return;
    const given = new Set((fs.dataset.given || "").split(",").filter(Boolean));
    buttons().forEach((b) => {
      const on = given.has(b.dataset.id);
      b.classList.toggle("given", on);
      if (on) b.title = "the given label"; else b.removeAttribute("title");
    });
  }
  document.addEventListener("htmx:configRequest", (event) => {
    if (!isExplain(event) && event.target.closest && event.target.closest("#review-card")) shownClasses.header(event.detail);
  });

  // A new card arrived (htmx swap) or a request ended: reset the state. The reason tabs come in the same
  // response as an out-of-band swap, so their counts follow each verdict.
  document.addEventListener("htmx:afterSwap", (event) => {
    if (isExplain(event)) return;
    const ours = event.detail.target && event.detail.target.id === "review-card";
    if (ours) { shownClasses.adopt(); markGiven(); }
    busy = false;
    setCorrecting(false);
    if (ours) { watchShown(); heatmapHint(); markLight(); }
  });
  document.addEventListener("htmx:afterRequest", (event) => { if (!isExplain(event)) { busy = false; markReady(); } });
  document.addEventListener("DOMContentLoaded", () => {
    shownTask = card() ? card().dataset.task : null;
    markReady();
    heatmapHint();
    showBackground();
    markLight();
  });
  // htmx does not swap 4xx responses by default; the card with the error message should replace the old one.
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.xhr.status === 400) { event.detail.shouldSwap = true; event.detail.isError = false; }
    if (!isExplain(event) && event.detail.shouldSwap && event.detail.target && event.detail.target.id === "review-card") {
      shownClasses.keep();
    }
  });
})();
