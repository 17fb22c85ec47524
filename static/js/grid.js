// Grid mode: select thumbnails with mouse (click, shift-click) or keys (arrows + space, a = all/none),
// then Enter labels the selection as the chosen class and n marks it "not that class"; / finds a class by name.
(function () {
  "use strict";

  const started = performance.now();
  // The tiles are on screen once the page and its thumbnails have loaded: labels made here record that moment.
  let shownAt = document.readyState === "complete" ? Date.now() : null;
  window.addEventListener("load", () => { if (shownAt === null) shownAt = Date.now(); });
  let cursor = -1;
  let anchor = -1;
  const tiles = () => Array.from(document.querySelectorAll("#tiles .tile"));
  const box = (tile) => tile.querySelector("input[type=checkbox]");

  function setSelected(tile, on) {
    box(tile).checked = on;
    tile.classList.toggle("selected", on);
  }

  function refresh() {
    const count = document.getElementById("selected-count");
    if (count) count.textContent = String(tiles().filter((t) => box(t).checked).length);
  }

  function moveCursor(index) {
    const all = tiles();
    if (!all.length) return;
    cursor = Math.max(0, Math.min(all.length - 1, index));
    all.forEach((t, i) => t.classList.toggle("cursor", i === cursor));
    all[cursor].focus({ preventScroll: false });
  }

  function columns() {
    const all = tiles();
    if (all.length < 2) return 1;
    const top = all[0].offsetTop;
    const n = all.findIndex((t) => t.offsetTop !== top);
    return n === -1 ? all.length : n;
  }

  function submit(action) {
    const form = document.getElementById("grid-form");
    if (!form) return;
    form.querySelector("input[name=ms]").value = String(Math.round(performance.now() - started));
    form.querySelector("input[name=shown_at]").value = String(shownAt ?? Date.now());
    form.querySelector("input[name=client_now]").value = String(Date.now());
    const button = document.getElementById(action === "not" ? "grid-not" : "grid-label");
    form.requestSubmit(button);
  }

  document.addEventListener("click", (e) => {
    const tile = e.target.closest && e.target.closest("#tiles .tile");
    if (!tile) return;
    e.preventDefault();
    const all = tiles();
    const index = all.indexOf(tile);
    if (e.shiftKey && anchor >= 0) {
      const [lo, hi] = anchor < index ? [anchor, index] : [index, anchor];
      all.forEach((t, i) => { if (i >= lo && i <= hi) setSelected(t, true); });
    } else {
      setSelected(tile, !box(tile).checked);
      anchor = index;
    }
    moveCursor(index);
    refresh();
  });

  // --- finding a class among many: the filter narrows the class list (chosen classes stay listed), Enter in it
  // chooses the first match (multi-label: adds or removes it) and never submits the form ---
  const classSelect = () => document.getElementById("grid-class");
  const filterInput = () => document.getElementById("grid-class-filter");
  const options = () => Array.from(classSelect().options);

  function showChosen() {
    const chosen = document.getElementById("grid-chosen");
    if (!chosen) return;
    const names = options().filter((o) => o.selected).map((o) => o.dataset.path);
    chosen.textContent = names.length ? "Chosen: " + names.join(" · ") : "No class chosen yet";
  }

  function applyFilter() {
    const query = filterInput().value;
    const found = new Set(window.LabelloopClassKeys.search(options(), query));
    options().forEach((o) => { o.hidden = Boolean(query.trim()) && !found.has(o) && !o.selected; });
    return options().filter((o) => found.has(o));
  }

  function onFilterKey(e) {
    if (e.key === "Escape") { e.preventDefault(); e.target.value = ""; applyFilter(); e.target.blur(); return; }
    if (e.key === "ArrowDown") { e.preventDefault(); classSelect().focus(); return; }
    if (e.key !== "Enter") return;
    e.preventDefault();  // a search's Enter must not label the selection
    const [first] = applyFilter();
    if (!first || e.repeat) return;
    if (classSelect().multiple) first.selected = !first.selected;
    else classSelect().value = first.value;
    e.target.value = "";
    applyFilter();
    first.scrollIntoView({ block: "nearest" });
    showChosen();
  }

  document.addEventListener("input", (e) => { if (e.target.id === "grid-class-filter") applyFilter(); });
  document.addEventListener("change", (e) => { if (e.target.id === "grid-class") showChosen(); });

  document.addEventListener("keydown", (e) => {
    if (e.target && e.target.id === "grid-class-filter") { onFilterKey(e); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target && /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName) && e.target.type !== "checkbox") return;
    const all = tiles();
    if (!all.length) return;
    const key = e.key;
    if (key === "/" && filterInput()) { e.preventDefault(); filterInput().focus(); }
    else if (key === "ArrowRight") { e.preventDefault(); moveCursor(cursor + 1); }
    else if (key === "ArrowLeft") { e.preventDefault(); moveCursor(cursor - 1); }
    else if (key === "ArrowDown") { e.preventDefault(); moveCursor(cursor < 0 ? 0 : cursor + columns()); }
    else if (key === "ArrowUp") { e.preventDefault(); moveCursor(cursor - columns()); }
    else if (key === " ") {
      e.preventDefault();
      if (cursor < 0) moveCursor(0);
      const tile = all[cursor];
      setSelected(tile, !box(tile).checked);
      anchor = cursor;
      refresh();
    } else if (key === "a") {
      e.preventDefault();
      const everything = all.every((t) => box(t).checked);
      all.forEach((t) => setSelected(t, !everything));
      refresh();
    } else if (key === "Enter") { e.preventDefault(); submit("label"); }
    else if (key === "n") { e.preventDefault(); submit("not"); }
  });

  document.addEventListener("DOMContentLoaded", () => {
    tiles().forEach((t) => t.classList.toggle("selected", box(t).checked));
    refresh();
    if (classSelect()) showChosen();
  });
})();
