// Labeling page: class keys level by level, taxonomy search, time per item, image prefetch, image background,
// the heatmap key (h, static/js/explain.js).
// The server renders everything; this file only turns keys into clicks and form submits.
//
// The rule that keeps labels honest: a key acts only on the image that is on screen when it is pressed.
// From the moment a card's request leaves until the next card's image is displayed there is no such image,
// so label, skip and undo keys pressed then are not applied (a note says how many), never replayed later.
// Nor are those pressed within REACTION_MS of a new image replacing the last one (window.LabelloopReaction, app.js).
// Keys come in runs (under BURST_MS apart): in a taxonomy a run drills down to one class, in a multi-label project a
// run toggles one image's set and ends with Enter. Once a key of a run is refused, the rest of the run is refused too:
// an Enter never submits a set that lost a toggle of its run. In a multi-label project a refused class key leaves the
// set incomplete whatever the pause, until that key is typed again (`pending`, below): the set is never saved without it.
// While a request is in flight the card says so (aria-busy, the image dimmed, "Saving…").
// `/` opens the class search at any time, and what is typed into the search is never a key (a `/` typed there separates
// words, as a space does: class-keys.js). Multi-label: the ticked classes are listed under the search (showTicked).
(function () {
  "use strict";

  const ClassKeys = window.LabelloopClassKeys;  // static/js/class-keys.js, loaded first
  const BURST_MS = 250;
  // How a note names a key: a character quoted (a bare "1 not applied" reads as a count), a named key or an action
  // ("Enter", "click", "Submit") as it is.
  const keyName = (key) => (key.length === 1 ? `Key "${key}"` : key);
  const Reaction = window.LabelloopReaction;  // static/js/app.js, loaded first
  const REACTION_MS = Reaction.MS;
  const Background = window.LabelloopBackground;  // static/js/stage-background.js, loaded first
  let started = performance.now();
  let level = "";       // parent id whose children are shown ("" = top level)
  let busy = false;     // a card request is in flight, until the card it returns has settled
  let sent = null;      // the request in flight: { xhr, kind } (kind: "label", "skip" or "undo")
  // The card whose image is on screen: { item, at, until }. at: ms since the epoch; until: the performance.now()
  // before which its keys are too soon (0 for the page's first card, which replaced no image).
  let shown = null;
  let carried = null;   // the class search's state while a card is swapped: { value, start, end }
  const shownClasses = ClassKeys.listKeeper("class-list");  // sent once per page, kept from card to card
  let refused = 0;      // keys not applied since the page loaded
  let refusedBurst = false;  // a key of the burst being typed was refused: the rest of it would drill from the wrong level
  let burstRefused = 0;  // keys of the burst being typed that were not applied (a pause of BURST_MS starts a new one)
  let lastKeyAt = 0;
  // Multi-label: the set being typed lost a class key. A refused class key was typed for the set of the image coming
  // (or of the one that had just appeared): until it is typed again and applied, Enter is refused, and says which key,
  // however long the pause. { missing: the refused keys not typed again, typed: ids of the classes keyed for this set,
  // undone: keys applied since the set was last cleared, closed: an Enter ended the run, so the keys refused after it
  // are for a later image }. It ends when a card request is sent or fails, or on Esc.
  let pending = null;
  let noteTimer = null;
  let setNote = false;  // the note on screen is about the set being typed (refused or started over): it ends with the set
  let searchIndex = 0;
  const preloaded = new Map();

  const card = () => document.getElementById("item-card");
  const page = () => document.querySelector(".label-page");
  const isMulti = () => card() && card().dataset.multi === "1";
  const isHierarchical = () => card() && card().dataset.hierarchical === "1";
  const buttons = () => Array.from(document.querySelectorAll("#label-form .class-btn"));
  const byId = (id) => buttons().find((b) => b.dataset.id === String(id));
  const search = () => document.getElementById("class-search");
  // Heatmap overlays (static/js/explain.js): their polls and swaps are not card requests.
  const Explain = window.LabelloopExplain;
  const isExplain = (e) => Boolean(Explain && Explain.isExplainEvent(e));

  // An image is on screen: the card is settled (no request in flight) and its image has been displayed.
  // A card without an item (nothing left to label) only takes undo, once settled.
  function onScreen() {
    if (busy || !card()) return false;
    return !card().dataset.item || Boolean(shown && shown.item === card().dataset.item);
  }

  // This card's image replaced another one less than REACTION_MS ago.
  const tooSoon = () => Boolean(shown && performance.now() < shown.until);

  // The card says whether it takes keys now (data-ready="1"): for people reading the DOM, and for the browser tests.
  function markReady() {
    if (card()) card().dataset.ready = onScreen() && !tooSoon() ? "1" : "";
  }

  function preload(url) {
    if (!url || preloaded.has(url)) return preloaded.get(url);
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    preloaded.set(url, img);
    if (preloaded.size > 40) preloaded.delete(preloaded.keys().next().value);
    return img;
  }

  // Record when this card's image is on screen: as it is swapped in when it was prefetched (the browser has it,
  // and paints it with the card), else once it has loaded. A broken image still shows its card (the alt text,
  // the skip button): the annotator sees what they act on.
  // swapped: the image replaced another one (keys wait REACTION_MS); seen: when this item was shown before, if the
  // card is the same item re-rendered (with a message).
  function watchShown(img, item, swapped, seen) {
    const mark = () => {
      if (card() && card().dataset.item === item && document.getElementById("item-image") === img && !shown) {
        shown = { item, at: seen || Date.now(), until: swapped ? performance.now() + REACTION_MS : 0 };
        markReady();
        if (swapped) setTimeout(markReady, REACTION_MS + 1);
      }
    };
    if (img.complete) { mark(); return; }
    img.addEventListener("load", mark, { once: true });
    img.addEventListener("error", mark, { once: true });
  }

  // swapped: the card replaced one on screen (a response), not the page's first. The same item again (a card
  // re-rendered with a message) was on screen already: no new image, no wait.
  function initCard(swapped) {
    shownClasses.adopt();
    started = performance.now();
    const before = shown;
    shown = null;
    const img = document.getElementById("item-image");
    const item = card().dataset.item;
    if (img && item) {
      const again = before && before.item === item;
      watchShown(img, item, swapped && !again, again ? before.at : null);
      if (Explain) img.addEventListener("load", Explain.apply);
      if (img.dataset.original) {
        // Thumbnail first (fast), then the full-resolution original as soon as it is decoded.
        const full = preload(img.dataset.original);
        const swap = () => {
          if (document.getElementById("item-image") !== img) return;
          if (Background.lightDrawing(full)) img.dataset.light = "1";
          img.src = full.src;
        };
        if (full.complete && full.naturalWidth) swap(); else full.addEventListener("load", swap, { once: true });
      }
    }
    document.querySelectorAll("link.prefetch").forEach((link) => {
      preload(link.href);
      preload(link.dataset.original);
    });
    showBackground();
    markChosen();
    showLevel("");
    restoreSearch();
    if (Explain) Explain.apply();
    markReady();
    placeNote();
  }

  // The class buttons stay on the page from card to card (the server sends them once: labeling/views/class_list.py):
  // each new card marks its own suggestion and starts with nothing else chosen or ticked.
  function markChosen() {
    const chosen = (card().dataset.preselected || "").split(" ");  // one class, or a multi-label model's set
    buttons().forEach((b) => {
      const on = chosen.includes(b.dataset.id);
      b.classList.toggle("on", on);
      const box = b.querySelector("input[type=checkbox]");
      if (box) box.checked = on;
    });
    showTicked();
  }

  // --- multi-label: the set being built, seen whole before Enter (as the grid names its chosen classes) ---

  // The ticked classes are named by path under the search, each a button that unticks it, and a class with subclasses
  // shows how many ticked classes it holds below it: a set spread over branches of a taxonomy, where one level is
  // shown at a time, is seen whole before it is saved. Called whenever a tick changes; the note of a search that
  // found nothing ends with it.
  function showTicked() {
    const list = document.getElementById("label-chosen");
    if (!list || !isMulti()) return;
    hideNoMatch();
    const ticked = Array.from(document.querySelectorAll("#label-form .class-btn > input[type=checkbox]:checked"),
      (box) => box.closest(".class-btn"));
    const below = new Map();  // class button -> how many ticked classes are under it
    ticked.forEach((b) => {
      const seen = new Set();
      for (let up = byIdFast(b.dataset.parent); up && !seen.has(up); up = byIdFast(up.dataset.parent)) {
        seen.add(up);
        below.set(up, (below.get(up) || 0) + 1);
      }
    });
    document.querySelectorAll("#label-form .class-btn > .ticked-below").forEach((badge) => {
      if (!below.has(badge.parentElement)) badge.remove();
    });
    below.forEach((n, group) => {
      let badge = group.querySelector(":scope > .ticked-below");
      if (!badge) {
        badge = document.createElement("span");
        badge.className = "ticked-below";
        group.insertBefore(badge, group.querySelector(":scope > .more"));
      }
      badge.textContent = `${n} ticked`;
      badge.title = `${n} ticked class${n === 1 ? "" : "es"} under ${group.dataset.path}`;
    });
    list.replaceChildren();
    if (!ticked.length) { list.textContent = "No class ticked yet"; return; }
    list.append(`Ticked (${ticked.length}):`);
    ticked.forEach((b) => {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chosen-class";
      chip.dataset.id = b.dataset.id;
      chip.title = "Click to untick";
      chip.setAttribute("aria-label", `Untick ${b.dataset.path}`);
      const name = document.createElement("span");
      name.textContent = b.dataset.path;  // textContent: class names are user text, never HTML
      const x = document.createElement("span");
      x.className = "untick";
      x.setAttribute("aria-hidden", "true");
      x.textContent = "×";
      chip.append(name, x);
      list.append(" ", chip);
    });
  }

  // One class button by id, without listing them all (showTicked walks up from every ticked class).
  const byIdFast = (id) => (id ? document.querySelector(`#label-form .class-btn[data-id="${CSS.escape(id)}"]`) : null);

  // --- taxonomy levels: each level's classes have keys of their own (labeling/selectors/keys.py) ---

  function showLevel(parent) {
    level = parent;
    buttons().forEach((b) => {
      b.hidden = isHierarchical() && (b.dataset.parent || "") !== level;
    });
    const crumb = document.getElementById("class-crumb");
    if (crumb) {
      crumb.hidden = !level;
      const parentBtn = level ? byId(level) : null;
      crumb.querySelector("span").textContent = parentBtn ? parentBtn.dataset.path : "";
    }
    showLevelSelf();
  }

  // A class with subclasses can be labeled itself (the server takes any class): its level offers it first, as
  // Enter does in a single-label project, so a class that gained a subclass keeps the keys the settings page shows.
  function showLevelSelf() {
    const self = document.getElementById("level-self");
    if (!self) return;
    const group = level ? byId(level) : null;
    self.hidden = !group;
    if (!group) return;
    self.querySelector(".name").textContent = group.querySelector(":scope > span:not(.more)").textContent;
    self.style.setProperty("--c", group.style.getPropertyValue("--c"));
    self.classList.toggle("on", group.classList.contains("on"));
  }

  function up() {
    const current = level ? byId(level) : null;
    showLevel(current ? current.dataset.parent || "" : "");
  }

  const visibleByKey = (key) => ClassKeys.visibleByKey(buttons(), key);
  const isClassKey = (key) => key.length === 1 && buttons().some((b) => b.dataset.key === key.toLowerCase());

  // --- requests ---

  // What the page is waiting for while a card request is in flight (shown in the strip, and in refusals).
  const PENDING = { label: "saving your last answer", skip: "saving your skip", undo: "undoing your last label" };
  const requestKind = (el) => {
    const form = el && el.closest ? el.closest("form") : null;
    return form && form.id === "undo-form" ? "undo" : form && form.id === "skip-form" ? "skip" : "label";
  };

  // The card on screen is the one being answered: dimmed (label.css), aria-busy, and a line that says what is on its
  // way. A new card replaces it; a failed request clears it.
  function showPending(kind) {
    const el = card();
    if (!el) return;
    if (kind) el.setAttribute("aria-busy", "true"); else el.removeAttribute("aria-busy");
    if (kind) el.dataset.pending = kind; else delete el.dataset.pending;
    const note = document.getElementById("pending-note");
    if (!note) return;
    note.textContent = kind ? `${PENDING[kind].charAt(0).toUpperCase()}${PENDING[kind].slice(1)}…` : "";
    note.hidden = !kind;
  }

  function stampTime(form) {
    const ms = form.querySelector("input[name=ms]");
    if (ms) ms.value = String(Math.round(performance.now() - started));
    // When the image appeared, by the page's clock, and the page's clock now: the server moves the time by the
    // difference between the two clocks when the browser's is off.
    const at = form.querySelector("input[name=shown_at]");
    if (at) at.value = shown && card() && shown.item === card().dataset.item ? String(shown.at) : "";
    const now = form.querySelector("input[name=client_now]");
    if (now) now.value = String(Date.now());
  }

  function submit(form, submitter) {
    if (!form || !onScreen()) return;
    stampTime(form);
    // htmx reads the submitting button from its click, so a chosen class button is clicked, not passed.
    // htmx issues the request synchronously: its htmx:beforeRequest sets `busy` before the next key arrives.
    if (submitter) submitter.click(); else form.requestSubmit();
  }

  function choose(btn) {
    if (!btn) return;
    const again = keyed(btn);
    if (pending) pending.undone += 1;
    if (btn.dataset.children === "1" && btn.dataset.id !== level) {
      closeSearch();
      showLevel(btn.dataset.id);
      return;
    }
    if (isMulti()) {
      const box = btn.querySelector("input[type=checkbox]");
      box.checked = again || !box.checked;
      btn.classList.toggle("on", box.checked);
      showTicked();
    } else {
      submit(document.getElementById("label-form"), btn);
    }
  }

  // --- type-ahead search over class paths ---

  const searchResults = (query) => ClassKeys.search(buttons(), query);

  function renderSearch() {
    const input = search();
    const list = document.getElementById("search-results");
    if (!input || !list) return;
    ClassKeys.renderResults(list, searchResults(input.value), searchIndex, pickSearch);
  }

  function openSearch() {
    const input = search();
    if (!input) return false;
    input.focus();
    input.select();
    return true;
  }

  function closeSearch() {
    const input = search();
    if (!input) return;
    input.value = "";
    renderSearch();
    input.blur();
  }

  // The search lives in the card, which a response replaces: what was typed (and the focus) moves to the new one.
  function carrySearch() {
    const input = search();
    carried = input && document.activeElement === input
      ? { value: input.value, start: input.selectionStart, end: input.selectionEnd } : null;
  }

  function restoreSearch() {
    const state = carried;
    carried = null;
    const input = search();
    if (!state || !input) return;
    input.value = state.value;
    input.focus();
    try { input.setSelectionRange(state.start, state.end); } catch (_) { /* not a text input */ }
    searchIndex = 0;
    renderSearch();
  }

  function pickSearch(btn) {
    if (!onScreen() || tooSoon()) {  // keep the query
      refuse("Enter", busy ? busyNote("Enter") : tooSoon() ? soonNote("Enter") : undefined);
      return;
    }
    const input = search();
    if (isMulti()) {
      keyed(btn);
      const box = btn.querySelector("input[type=checkbox]");
      box.checked = true;
      btn.classList.add("on");
      input.value = "";
      renderSearch();
      showTicked();
    } else {
      input.blur();
      submit(document.getElementById("label-form"), btn);
    }
  }

  function onSearchKey(e) {
    const input = e.target;
    const results = searchResults(input.value);
    const moved = ClassKeys.step(e.key, searchIndex, results.length);
    if (moved !== null) { searchIndex = moved; renderSearch(); e.preventDefault(); }
    else if (e.key === "Enter") {
      e.preventDefault();
      if (e.repeat) return;
      if (results[searchIndex]) pickSearch(results[searchIndex]); else noMatch(input.value);
    } else if (e.key === "Escape") { e.preventDefault(); closeSearch(); }
  }

  // Enter on a query that finds no class: nothing is ticked or labeled, and the line under the search says so (it
  // stays after Esc, until the search is typed in again or a tick changes), so a set is never saved believing a class
  // was added to it.
  function noMatch(query) {
    const note = document.getElementById("search-none");
    if (!note) return;
    const typed = query.replace(/^[\s/]+|[\s/]+$/g, "");  // a "/" at either end separates nothing
    const nothing = isMulti() ? "nothing was ticked" : "nothing was labeled";
    note.textContent = ClassKeys.terms(typed).length
      ? `No class matches “${typed}”: ${nothing}. Change the words, or Esc to leave the search.`
      : "Type a class's name or path (words in any order), then Enter; Esc leaves the search.";
    note.hidden = false;
  }

  function hideNoMatch() {
    const note = document.getElementById("search-none");
    if (note) note.hidden = true;
  }

  // --- overlays, background, notes ---

  function toggleOverlay(id, force) {
    const el = document.getElementById(id);
    if (!el) return;
    el.hidden = force === undefined ? !el.hidden : !force;
    if (id === "shortcuts-overlay" && !el.hidden) sayClassKeys();
  }

  // The shortcuts' first row names the keys the project's classes have (their buttons' keys, every taxonomy level):
  // digits as runs ("0…9" where classes are named 0 to 9, "1…9" where letters follow), then "letters" if any class
  // has one. Without a class key on the page the template's words stay.
  function sayClassKeys() {
    const cell = document.getElementById("class-keys-said");
    if (!cell) return;
    const keys = new Set(buttons().map((b) => (b.dataset.key || "").toLowerCase()).filter(Boolean));
    if (!keys.size) return;
    const digits = [...keys].filter((k) => /^[0-9]$/.test(k)).map(Number).sort((a, b) => a - b);
    const runs = [];
    digits.forEach((d) => {
      const run = runs[runs.length - 1];
      if (run && d === run[1] + 1) run[1] = d; else runs.push([d, d]);
    });
    const kbd = (text) => { const k = document.createElement("kbd"); k.textContent = String(text); return k; };
    const parts = [];
    runs.forEach(([first, last]) => {
      if (last - first >= 2) parts.push([kbd(first), "…", kbd(last)]);
      else for (let d = first; d <= last; d += 1) parts.push([kbd(d)]);
    });
    if (digits.length < keys.size) parts.push(["letters"]);
    cell.replaceChildren(...parts.flatMap((part, i) => (i ? [", ", ...part] : part)));
  }

  function closeOverlays() {
    const open = ["shortcuts-overlay", "instructions-overlay"].filter((id) => {
      const el = document.getElementById(id);
      return el && !el.hidden;
    });
    open.forEach((id) => toggleOverlay(id, false));
    return open.length > 0;
  }

  function showBackground() {
    const name = Background.current();
    if (page()) page().dataset.bg = name;
    const label = document.querySelector(".stage .bg-name");
    if (label) label.textContent = Background.title(name);
  }

  function nextBackground() {
    Background.next();
    showBackground();
  }

  // The rest of a burst whose first keys were refused: the image is on screen, but from this card's top level the
  // keys would spell another class, or in a multi-label project save the set without the refused class. The burst
  // ends at a pause of BURST_MS. The note counts the run's keys.
  const keysCount = (n) => `${n} key${n === 1 ? "" : "s"} not applied since your last pause.`;
  const burstNote = (key) => isMulti()
    ? `${keyName(key)} not applied: it came in one run of keys with a key that was refused, so this image's set would miss a class. ${keysCount(burstRefused)} Pause, then type the whole set again.`
    : `${keyName(key)} not applied: it came in one run of keys with a key that was refused, and on its own would pick from the wrong level. ${keysCount(burstRefused)} Pause, then type the class again.`;

  // A key pressed while the card's request is in flight: the image on screen is being answered, so no press is asked.
  const busyNote = (key) =>
    `${keyName(key)} not applied: still ${PENDING[sent ? sent.kind : "label"]}: wait for the next image.`;

  // A key pressed with no image on screen: not applied, and said so (the count stays on the note for tests).
  function refuse(key, message, ms = 2500) {
    refused += 1;
    say(message || `${keyName(key)} not applied: the next image was not on screen yet. Press it again.`, ms);
  }

  function say(message, ms = 2500) {
    const el = document.getElementById("key-note");
    if (!el) return;
    el.dataset.refused = String(refused);
    el.textContent = message;
    el.hidden = false;
    placeNote();
    setNote = false;
    clearTimeout(noteTimer);
    noteTimer = setTimeout(() => { el.hidden = true; }, ms);
  }

  // The note stands just under the site's bar (over the progress strip), as wide as the image's column: never over
  // the project's links, nor over the image or the class buttons beside or below it. Placed again on scroll.
  function placeNote() {
    const el = document.getElementById("key-note");
    if (!el || el.hidden) return;
    const stage = document.querySelector("#item-card .stage") || card();
    if (!stage) return;
    const box = stage.getBoundingClientRect();
    const bar = document.querySelector(".topbar");
    el.style.top = `${Math.round((bar ? Math.max(0, bar.getBoundingClientRect().bottom) : 0) + 6)}px`;
    el.style.left = `${Math.round(box.left + box.width / 2)}px`;
    el.style.maxWidth = `${Math.round(Math.min(box.width - 12, window.innerWidth - 16))}px`;
  }
  window.addEventListener("scroll", placeNote, { passive: true });
  window.addEventListener("resize", placeNote);

  // The set is sent: a note about it would stand over the next image, and read as if that set was refused too.
  function endSetNote() {
    const el = document.getElementById("key-note");
    if (!setNote || !el) return;
    setNote = false;
    clearTimeout(noteTimer);
    el.hidden = true;
  }

  // --- a multi-label set that lost a key (`pending`) ---

  const keyList = (keys) => {
    const quoted = keys.map((k) => `"${k}"`);
    return quoted.length === 1 ? `key ${quoted[0]}` : `keys ${quoted.slice(0, -1).join(", ")} and ${quoted.at(-1)}`;
  };

  // A key refused in a multi-label project: a class key joins the set's missing keys, an Enter ends the set's run.
  function lose(key) {
    if (!isMulti()) return;
    if (key === "Enter") { if (pending) pending.closed = true; return; }
    if (!isClassKey(key)) return;
    if (!pending) pending = { missing: [], typed: new Set(), undone: 0, closed: false };
    const k = key.toLowerCase();
    if (!pending.closed && !pending.missing.includes(k)) pending.missing.push(k);
  }

  // A class of this set keyed, clicked or picked: its key is no longer missing. Returns whether it was keyed for this
  // set before (the refused key, or one applied since): typed again, it ticks its class and never unticks it, so a set
  // typed again whole keeps the classes already ticked ("6 2 ⏎" again over a ticked 2 saves 6 and 2).
  function keyed(btn) {
    if (!pending) return false;
    const k = (btn.dataset.key || "").toLowerCase();
    const again = pending.missing.includes(k) || pending.typed.has(btn.dataset.id);
    pending.missing = pending.missing.filter((m) => m !== k);
    pending.typed.add(btn.dataset.id);
    return again;
  }

  const incomplete = () => Boolean(isMulti() && pending && pending.missing.length);

  // Enter (or the save button) on an incomplete set: nothing is saved, and the set goes back to how the card came. The
  // keys applied since may be the next image's set, typed while this one still showed: they are undone (and counted
  // with the keys not applied), so the whole set typed again is saved whole.
  function refuseIncomplete(key) {
    const keys = keyList(pending.missing);
    const one = pending.missing.length === 1;
    refused += pending.undone;
    pending.undone = 0;
    pending.typed = new Set();
    pending.closed = true;
    refusedBurst = true;
    markChosen();
    showLevel("");
    refuse(key, `${keyName(key)} not applied: ${keys} ${one ? "was" : "were"} not applied, so this set ` +
      `would miss ${one ? "it" : "them"}. Type the whole set again, then Enter; or Esc to start over without ${one ? "it" : "them"}.`, 8000);
    setNote = true;
  }

  // Esc on a set that lost a key: the refused keys are dropped, and the set on screen goes back to how the card came.
  function startOver() {
    const keys = keyList(pending.missing);
    pending = null;
    say(`Started over without ${keys}: type the set, then Enter.`);
    setNote = true;
    if (!onScreen()) return;
    markChosen();
    showLevel("");
  }

  function cardNotice(message) {
    if (!message || !card()) return;
    const slot = card().querySelector(".notice-slot");
    const notice = document.createElement("span");
    notice.className = "notice notice-error";
    notice.setAttribute("role", "alert");
    notice.textContent = message;
    if (slot) slot.replaceChildren(notice); else card().prepend(notice);
  }

  const soonNote = (key) => Reaction.note(keyName(key), "image", performance.now() - shown.until + REACTION_MS);

  // --- keys ---

  // The card keys, on the card on screen (the caller checked onScreen). Returns whether the key did something.
  function cardKey(key) {
    if (key === "z") { submit(document.getElementById("undo-form")); return true; }
    if (!card().dataset.item) return false;
    if (key === "s") { submit(document.getElementById("skip-form")); return true; }
    if (key === "Backspace") { up(); return true; }
    if (key === "Enter") {
      const form = document.getElementById("label-form");
      if (isMulti()) { submit(form); return true; }
      const target = level ? byId(level) : byId(card().dataset.preselected);
      if (target) submit(form, target);
      else say(card().dataset.suggested === "1"
        ? "Enter accepts a preselected suggestion; this project does not preselect one: press the image's class key."
        : "Enter accepts the suggestion; this image has none: press its class key.");
      return Boolean(target);
    }
    const btn = visibleByKey(key);
    if (btn) { choose(btn); return true; }
    return false;
  }

  // Keys that act on an image (or undo one): these are the ones refused while no image is on screen.
  const isCardKey = (key) => ["z", "s", "Enter", "Backspace"].includes(key) || isClassKey(key);

  document.addEventListener("keydown", (e) => {
    if (e.target && e.target.id === "class-search") { onSearchKey(e); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target && /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName) && e.target.type !== "checkbox") return;
    const key = e.key;
    if (key === "Escape") {
      refusedBurst = false;  // a fresh start
      if (closeOverlays()) return;
      if (incomplete()) startOver();
      else if (level && onScreen()) up();
      return;
    }
    if (key === "?") { toggleOverlay("shortcuts-overlay"); e.preventDefault(); return; }
    if (key === "i") { toggleOverlay("instructions-overlay"); e.preventDefault(); return; }
    if (key === "b") { nextBackground(); e.preventDefault(); return; }
    // h shows or hides the model's heatmap (a view, not a label: it acts while the next image loads too).
    if (key === "h" && Explain && !isClassKey(key)) { Explain.toggle(); e.preventDefault(); return; }
    if (!card()) return;
    if (key === "/") {
      // Any time, even while the next card loads: the query moves to it (carrySearch) and is never a key.
      if (openSearch()) e.preventDefault();
      return;
    }
    if (!isCardKey(key)) return;
    // Enter and Space never also click a focused button; a held-down key's auto-repeat is not a press.
    e.preventDefault();
    if (e.repeat) return;
    // Keys typed in one burst (under BURST_MS apart) belong together. In a taxonomy "6 1 1 2" drills down to one
    // class: once one of them is refused, the rest would start from the top level of the new card and spell another.
    // In a multi-label project "6 2 ⏎" is one image's set: once one is refused, the rest would save part of it.
    const now = performance.now();
    const sameBurst = now - lastKeyAt < BURST_MS;
    lastKeyAt = now;
    if (!sameBurst) burstRefused = 0;
    if (!onScreen() || tooSoon() || (refusedBurst && sameBurst && (isHierarchical() || isMulti()))) {
      burstRefused += 1;
      const why = !onScreen() ? (busy ? busyNote(key) : undefined) : tooSoon() ? soonNote(key) : burstNote(key);
      refusedBurst = true;
      refuse(key, why);
      lose(key);
      return;
    }
    if (key === "Enter" && incomplete()) { burstRefused += 1; refuseIncomplete(key); return; }
    refusedBurst = false;
    cardKey(key);
  });

  // The level's own class: a click on it is a click on that class's button (a label, or a tick in a multi-label project).
  document.addEventListener("click", (e) => {
    if (!e.target.closest || !e.target.closest("#level-self")) return;
    const group = level ? byId(level) : null;
    if (group) group.click();
    setTimeout(showLevelSelf, 0);
  });
  document.addEventListener("click", (e) => {
    const btn = e.target.closest && e.target.closest("#label-form .class-btn");
    if (!btn) return;
    if (btn.dataset.children === "1" && btn.dataset.id !== level) { e.preventDefault(); closeSearch(); showLevel(btn.dataset.id); return; }
    if (isMulti()) {
      keyed(btn);
      // The label wraps its checkbox: let the browser toggle it, then mirror the state.
      setTimeout(() => { btn.classList.toggle("on", btn.querySelector("input").checked); showTicked(); }, 0);
    }
  });
  // A ticked class named under the search: a click unticks it (on the image on screen only).
  document.addEventListener("click", (e) => {
    const chip = e.target.closest && e.target.closest("#label-chosen .chosen-class");
    if (!chip) return;
    if (!onScreen()) { refuse("click"); return; }
    const btn = byIdFast(chip.dataset.id);
    if (!btn) return;
    btn.querySelector("input[type=checkbox]").checked = false;
    btn.classList.remove("on");
    showTicked();
    showLevelSelf();
  });
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("#class-crumb .up")) up();
  });
  window.LabelloopGuardDoubleClick("#item-card", () => (card() ? card().dataset.item : ""), () => refuse(
    "click", "Second click of a double click not applied: it landed on the next image. Click once per image."));
  document.addEventListener("submit", (e) => { if (e.target.closest("#item-card")) stampTime(e.target); }, true);
  document.addEventListener("input", (e) => {
    if (e.target.id === "class-search") { searchIndex = 0; hideNoMatch(); renderSearch(); }
  });

  // Conflicts (409) and bad input (400) come back as a card with a message: show it.
  document.addEventListener("htmx:beforeSwap", (e) => {
    if (isExplain(e)) return;
    const status = e.detail.xhr.status;
    if (status === 400 || status === 409) { e.detail.shouldSwap = true; e.detail.isError = false; }
    if (e.detail.shouldSwap && e.detail.target && e.detail.target.id === "item-card") {
      carrySearch();
      shownClasses.keep();
    }
  });
  // Tell the server which class list the page shows: while it is the project's, the card comes without one.
  document.addEventListener("htmx:configRequest", (e) => {
    if (!isExplain(e) && e.target.closest && e.target.closest("#item-card")) shownClasses.header(e.detail);
  });
  document.addEventListener("htmx:beforeRequest", (e) => {
    if (isExplain(e)) return;
    if (!e.target.closest || !e.target.closest("#item-card")) return;
    // One card request at a time, and only about the image on screen: a click while the next card loads
    // would act on a card that is being replaced.
    if (!onScreen()) { e.preventDefault(); if (!busy) refuse("click"); return; }
    if (requestKind(e.target) === "label" && incomplete()) { e.preventDefault(); refuseIncomplete("Submit"); return; }
    pending = null;  // the image is answered: its set ends here, and the note about it
    endSetNote();
    busy = true;
    sent = { xhr: e.detail.xhr, kind: requestKind(e.target) };
    showPending(sent.kind);
    markReady();
  });
  const isSent = (e) => Boolean(sent && e.detail && e.detail.xhr === sent.xhr);
  document.addEventListener("htmx:afterSwap", (e) => { if (e.detail.target && card() && !isExplain(e)) initCard(true); });
  // The new card's forms are wired by htmx only once it settles: keys act on it from then on (and its image shown).
  document.addEventListener("htmx:afterSettle", (e) => {
    if (!isSent(e)) return;
    busy = false;
    sent = null;
    markReady();
  });
  // Backstop: a response that neither swapped nor failed (none is sent today) must not leave the page busy.
  document.addEventListener("htmx:afterRequest", (e) => {
    if (!isSent(e)) return;
    const request = sent;
    setTimeout(() => { if (sent === request) failed(e, "The next image did not arrive: reload the page."); }, 1000);
  });
  // A request that swapped nothing (server error, network down): the card on screen stays, and takes keys again.
  // message: a string, or a function of the request's kind.
  function failed(e, message) {
    if (!isSent(e)) return;
    const kind = sent.kind;
    busy = false;
    sent = null;
    pending = null;  // keys refused meanwhile were for the next image, which did not come
    showPending(null);
    cardNotice(typeof message === "function" ? message(kind) : message);
    markReady();
  }
  // The answer did not come back, so the outcome is unknown: the server may have done it. Pressing again is safe: a
  // label or skip saved already is refused with what was saved, and an undo names the label it withdraws (the server
  // refuses it once withdrawn), so a repeated press never does the thing twice.
  const UNKNOWN = {
    label: "your label may not have been saved. Press the key again: if it was, the page says so and changes nothing.",
    skip: "your skip may not have been saved. Press s again: if it was, the page says so and changes nothing.",
    undo: "your last label or skip may have been withdrawn already. Press z again: if it was, the page says so and withdraws nothing more.",
  };
  const unknown = (why) => (kind) => `${why}: ${UNKNOWN[kind]}`;
  document.addEventListener("htmx:responseError", (e) => failed(e, unknown(`The server answered ${e.detail.xhr.status}`)));
  document.addEventListener("htmx:sendError", (e) => failed(e, unknown("The server's answer did not arrive")));
  document.addEventListener("htmx:timeout", (e) => failed(e, unknown("The server did not answer in time")));
  document.addEventListener("htmx:sendAbort", (e) => failed(e, unknown("The request was cancelled")));
  document.addEventListener("htmx:swapError", (e) => failed(e, "The next image could not be shown: reload the page."));
  document.addEventListener("DOMContentLoaded", () => initCard(false));
})();
