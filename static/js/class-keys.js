// Class keys and class search, shared by the labeling page (label.js) and the review page (review.js): which
// shown class a key names, which classes a search finds, the results list and its arrow keys.
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

  // Type-ahead search over class paths (every level): the first matches, in the page's order.
  function search(buttons, query) {
    const q = query.trim().toLowerCase();
    if (!q) return [];
    return buttons.filter((b) => b.dataset.path.toLowerCase().includes(q)).slice(0, MAX_RESULTS);
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

  return Object.freeze({ visibleByKey, search, renderResults, step });
})();
