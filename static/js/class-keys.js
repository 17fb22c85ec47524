// Class keys and class search, shared by the labeling page (label.js) and the review page (review.js): which
// shown class a key names, which classes a search finds, the results list and its arrow keys, and the class list
// that stays on the page from card to card.
// Each page keeps its own state (taxonomy level, active result) and decides what a pick does.
// Loaded before the page's own script; no build step: one object on window.
window.LabelloopClassKeys = (function () {
  "use strict";

  const MAX_RESULTS = 8;

  // The class shown now (one taxonomy level at a time) whose key this is, if any.
  function visibleByKey(buttons, key) {
    const k = key.toLowerCase();
    return buttons.find((b) => !b.hidden && b.dataset.key && b.dataset.key.toLowerCase() === k);
  }

  // Text as search compares it: without accents or case ("Café" and "cafe" are the same; "Ä" is "a").
  const fold = (text) => text.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();

  // The words of a query. "/" separates words as a space does: a path as exports, the API and config.json spell it
  // ("round/ring/red", "ring/red") finds the class shown "round / ring / red", and the "/" that opens the search,
  // typed again while the search has the focus, is a separator there, never part of a word that matches nothing.
  const terms = (query) => fold(query).split(/[\s/]+/).filter(Boolean);

  // Type-ahead search over class paths (every level): the classes whose path holds every word typed, in any
  // order ("cat mammal" finds "animals / mammals / cat"), the first matches in the page's order.
  function search(buttons, query) {
    const words = terms(query);
    if (!words.length) return [];
    return buttons.filter((b) => {
      const path = fold(b.dataset.path);
      return words.every((w) => path.includes(w));
    }).slice(0, MAX_RESULTS);
  }

  // Fill the results list: one item per class, the active one marked; a mouse press picks without blurring.
  function renderResults(list, results, active, onPick) {
    list.replaceChildren();
    results.forEach((b, i) => {
      const li = document.createElement("li");
      li.textContent = b.dataset.path;  // textContent: class names are user text, never HTML
      li.dataset.id = b.dataset.id;
      li.className = i === active ? "active" : "";
      li.addEventListener("mousedown", (e) => { e.preventDefault(); onPick(b); });
      list.appendChild(li);
    });
    list.hidden = results.length === 0;
  }

  // The active result after an arrow key, or null for any other key.
  function step(key, active, count) {
    if (key === "ArrowDown") return Math.min(active + 1, count - 1);
    if (key === "ArrowUp") return Math.max(active - 1, 0);
    return null;
  }

  // The class list a page keeps from card to card (the server sends it once: labeling/views/class_list.py), by its
  // element id. header(detail): on a card request, name the list the page shows (X-Class-List). keep(): before a
  // card swap. adopt(): after it, a card that came without the list (a data-keep placeholder) gets the kept one;
  // should that be missing, the page reloads rather than show a card without classes.
  function listKeeper(id) {
    let kept = null;
    return Object.freeze({
      header(detail) {
        const list = document.getElementById(id);
        if (list && list.dataset.key) detail.headers["X-Class-List"] = list.dataset.key;
      },
      keep() { kept = document.getElementById(id); },
      adopt() {
        const slot = document.querySelector(`#${id}[data-keep]`);
        const list = kept;
        kept = null;
        if (!slot) return;
        if (list && list.dataset.key === slot.dataset.key) slot.replaceWith(list); else window.location.reload();
      },
    });
  }

  return Object.freeze({ visibleByKey, terms, search, renderResults, step, listKeeper });
})();
