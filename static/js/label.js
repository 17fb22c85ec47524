// Labeling page: hotkeys, taxonomy drill-down and search, time per item, image prefetch, typed-ahead keys.
// The server renders everything; this file only turns keys into clicks and form submits.
(function () {
  "use strict";

  const QUEUE_MAX = 10;  // keys typed ahead beyond this are refused, not guessed at
  let started = performance.now();
  let level = "";       // parent id whose children are shown ("" = top level)
  let busy = false;     // a card request is in flight, until the card it returns has settled
  let sent = null;      // the request in flight: { xhr, item, undo }
  let queue = [];       // card keys pressed while busy, replayed in order on the cards that follow
  let searchIndex = 0;
  const preloaded = new Map();
  const hotkeys = new Set();  // class hotkeys seen on this page (the done card has no class buttons)

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
    buttons().forEach((b) => { if (b.dataset.key) hotkeys.add(b.dataset.key.toLowerCase()); });
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
    // htmx reads the submitting button from its click, so a chosen class button is clicked, not passed.
    // htmx issues the request synchronously: its htmx:beforeRequest sets `busy` before the next key arrives.
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

  // The card keys: each acts on the card shown now. Returns whether the key did something.
  function cardKey(key) {
    if (!card()) return false;
    if (key === "z") { submit(document.getElementById("undo-form")); return true; }
    if (!card().dataset.item) return false;
    if (key === "s") { submit(document.getElementById("skip-form")); return true; }
    if (key === "Backspace") {
      const current = level ? byId(level) : null;
      showLevel(current ? current.dataset.parent || "" : "");
      return true;
    }
    if (key === "Enter") {
      const form = document.getElementById("label-form");
      if (isMulti()) { submit(form); return true; }
      const target = level ? byId(level) : byId(card().dataset.preselected);
      if (target) submit(form, target);
      return Boolean(target);
    }
    const btn = buttons().find((b) => b.dataset.key && b.dataset.key === key.toLowerCase());
    if (btn) { choose(btn); return true; }
    return false;
  }

  const isCardKey = (key) => ["z", "s", "Enter", "Backspace"].includes(key) || hotkeys.has(key.toLowerCase());

  function showQueue(note) {
    const el = document.getElementById("key-queue");
    if (!el) return;
    const names = queue.map((k) => (k === "Enter" ? "⏎" : k === "Backspace" ? "⌫" : k));
    el.textContent = note || `${queue.length} queued: ${names.join(" ")}`;
    el.hidden = !note && queue.length === 0;
  }

  function enqueue(key) {
    if (queue.length >= QUEUE_MAX) { showQueue(`${queue.length} queued (full): ${key} not taken`); return; }
    queue.push(key);
    showQueue();
  }

  // Replay typed-ahead keys on the card that just settled, until one of them sends the next request.
  function drain() {
    while (queue.length && !busy) {
      cardKey(queue.shift());
    }
    showQueue();
  }

  // Drop the typed-ahead keys: they were meant for cards in a sequence that the server broke off.
  // `message` is shown when the card does not already carry the server's own.
  function dropQueue(message) {
    const dropped = queue.length;
    queue = [];
    showQueue();
    const text = [message, dropped ? `${dropped} key(s) typed ahead were not applied.` : ""].filter(Boolean).join(" ");
    if (!text || !card()) return;
    const notice = document.createElement("div");
    notice.className = "notice notice-error";
    notice.setAttribute("role", "alert");
    notice.textContent = text;
    card().prepend(notice);
  }

  document.addEventListener("keydown", (e) => {
    if (e.target && e.target.id === "class-search") { onSearchKey(e); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target && /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName) && e.target.type !== "checkbox") return;
    const key = e.key;
    if (key === "Escape") { toggleOverlay("shortcuts-overlay", false); toggleOverlay("instructions-overlay", false); return; }
    if (key === "?") { toggleOverlay("shortcuts-overlay"); e.preventDefault(); return; }
    if (key === "i") { toggleOverlay("instructions-overlay"); e.preventDefault(); return; }
    if (!card()) return;
    if (busy) {
      // Typed ahead: keep the key for the card that the request in flight brings. A held-down key's
      // auto-repeat is not a press, so it is never queued (one press = one label).
      if (isCardKey(key)) { e.preventDefault(); if (!e.repeat) enqueue(key); }
      return;
    }
    if (e.repeat && isCardKey(key)) { e.preventDefault(); return; }
    if (key === "/" && card().dataset.item) {
      e.preventDefault();
      const s = document.getElementById("class-search");
      s.focus();
      s.select();
      return;
    }
    const enter = key === "Enter" && card().dataset.item;  // never let Enter click a focused button as well
    if (cardKey(key) || enter) e.preventDefault();
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
  document.addEventListener("htmx:beforeRequest", (e) => {
    if (!e.target.closest || !e.target.closest("#item-card")) return;
    // One card request at a time: a mouse click (or htmx's own queue) during one would act on a card that is
    // being replaced. Keys typed meanwhile are queued instead (see keydown).
    if (busy) { e.preventDefault(); return; }
    busy = true;
    sent = { xhr: e.detail.xhr, item: card().dataset.item, undo: Boolean(e.target.closest("#undo-form")) };
  });
  const isSent = (e) => Boolean(sent && e.detail && e.detail.xhr === sent.xhr);
  document.addEventListener("htmx:afterSwap", (e) => { if (e.detail.target && card()) initCard(); });
  // The new card's forms are wired by htmx only once it settles: keys typed ahead are replayed from then on.
  document.addEventListener("htmx:afterSettle", (e) => {
    if (!isSent(e)) return;
    const request = sent;
    busy = false;
    sent = null;
    if (request.xhr.status >= 400) { dropQueue(""); return; }  // 400/409: the card shows the server's message
    if (queue.length && !request.undo && request.item && card() && request.item === card().dataset.item) {
      dropQueue("The same image came back, so the keys typed ahead were stopped.");
      return;
    }
    drain();
  });
  // Backstop: a response that neither swapped nor failed (none is sent today) must not leave keys queued for ever.
  document.addEventListener("htmx:afterRequest", (e) => {
    if (!isSent(e)) return;
    const request = sent;
    setTimeout(() => { if (sent === request) failed(e, "The next image did not arrive: reload the page."); }, 1000);
  });
  // A request that swapped nothing (server error, network down): no key typed ahead can be matched to its item.
  function failed(e, message) {
    if (!isSent(e)) return;
    busy = false;
    sent = null;
    dropQueue(message);
  }
  document.addEventListener("htmx:responseError", (e) => {
    failed(e, `Not saved: the server answered ${e.detail.xhr.status}. Press the key again.`);
  });
  document.addEventListener("htmx:sendError", (e) => failed(e, "Not saved: the server could not be reached. Press the key again."));
  document.addEventListener("htmx:timeout", (e) => failed(e, "Not saved: the server did not answer in time. Press the key again."));
  document.addEventListener("htmx:sendAbort", (e) => failed(e, "Not saved: the request was cancelled. Press the key again."));
  document.addEventListener("htmx:swapError", (e) => failed(e, "The next image could not be shown: reload the page."));
  document.addEventListener("DOMContentLoaded", initCard);
})();
