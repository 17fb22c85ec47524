// Grid mode: select thumbnails with mouse (click, shift-click) or keys (Tab reaches the tiles as one stop, arrows
// move, Space selects, Shift+arrows extend from the anchor, a = all/none), then Enter labels the selection as the
// chosen class and n marks it "not that class"; / finds a class by name, Enter there chooses the first match and
// Enter again (the finder empty) labels the selection. Nothing is sent without a class chosen.
(function () {
  "use strict";

  const started = performance.now();
  // The tiles are on screen once the page and its thumbnails have loaded: labels made here record that moment.
  let shownAt = document.readyState === "complete" ? Date.now() : null;
  window.addEventListener("load", () => { if (shownAt === null) shownAt = Date.now(); });
  let cursor = -1;
  let anchor = -1;
  // The selection when the anchor was last set: a range (shift-click, Shift+arrow) is added to it, so extending
  // and then shrinking a range takes back only what the range added.
  let base = new Set();
  const tiles = () => Array.from(document.querySelectorAll("#tiles .tile"));
  const box = (tile) => tile.querySelector("input[type=checkbox]");
  const form = () => document.getElementById("grid-form");

  // The one place a tile's selection changes: its checkbox (what the form sends), its look and what a screen reader
  // hears (aria-selected) change together.
  function setSelected(tile, on) {
    box(tile).checked = on;
    tile.classList.toggle("selected", on);
    tile.setAttribute("aria-selected", on ? "true" : "false");
  }

  // With this script the tiles are the ARIA multi-select listbox pattern (one Tab stop, arrows move, Space selects,
  // Shift+arrows a range), each tile an option whose aria-selected follows its checkbox; the checkbox is then drawn
  // but not announced. Without the script they stay plain labelled checkboxes, which is what works then.
  function listbox() {
    const list = document.getElementById("tiles");
    if (!list || !tiles().length) return;
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-multiselectable", "true");
    list.setAttribute("aria-label", "Images to label");
    if (document.getElementById("grid-keys")) list.setAttribute("aria-describedby", "grid-keys");
    tiles().forEach((t) => {
      t.setAttribute("role", "option");
      box(t).setAttribute("aria-hidden", "true");
      setSelected(t, box(t).checked);  // a box the browser restored (Back, reload) stays selected, and says so
    });
  }

  function selectedCount() {
    return tiles().filter((t) => box(t).checked).length;
  }

  function refresh() {
    const count = document.getElementById("selected-count");
    if (count) count.textContent = String(selectedCount());
    notify("");
  }

  // The grid is one Tab stop: the tile under the cursor is the one Tab reaches (roving tabindex).
  function rove(index) {
    tiles().forEach((t, i) => {
      t.tabIndex = i === index ? 0 : -1;
      t.classList.toggle("cursor", i === index && cursor >= 0);
    });
  }

  function moveCursor(index) {
    const all = tiles();
    if (!all.length) return;
    cursor = Math.max(0, Math.min(all.length - 1, index));
    rove(cursor);
    all[cursor].focus({ preventScroll: false });
  }

  function setAnchor(index) {
    anchor = index;
    base = new Set(tiles().map((t, i) => (box(t).checked ? i : -1)).filter((i) => i >= 0));
  }

  function selectRange(to) {
    const [lo, hi] = anchor < to ? [anchor, to] : [to, anchor];
    tiles().forEach((t, i) => setSelected(t, base.has(i) || (i >= lo && i <= hi)));
  }

  function columns() {
    const all = tiles();
    if (all.length < 2) return 1;
    const top = all[0].offsetTop;
    const n = all.findIndex((t) => t.offsetTop !== top);
    return n === -1 ? all.length : n;
  }

  function notify(text) {
    const notice = document.getElementById("grid-notice");
    if (!notice) return;
    notice.textContent = text;
    notice.hidden = !text;
  }

  // Whether the form may be sent: a selection and a class, else the page says what is missing and sends nothing.
  function ready() {
    if (!selectedCount()) { notify("Select at least one image first: nothing was labeled."); return false; }
    if (!options().some((o) => o.selected)) {
      notify("Choose a class first (/ finds one): nothing was labeled.");
      return false;
    }
    return true;
  }

  function submit(action) {
    const f = form();
    if (!f) return;
    f.requestSubmit(document.getElementById(action === "not" ? "grid-not" : "grid-label"));
  }

  // Every way of sending the form (Enter, n, the buttons) passes here; the browser's own check of the class menu
  // (`required`, for a page without this script) is replaced by ready(), which says what is missing on the page.
  document.addEventListener("submit", (e) => {
    const f = e.target;
    if (f.id !== "grid-form") return;
    if (!ready()) { e.preventDefault(); return; }
    f.querySelector("input[name=ms]").value = String(Math.round(performance.now() - started));
    f.querySelector("input[name=shown_at]").value = String(shownAt ?? Date.now());
    f.querySelector("input[name=client_now]").value = String(Date.now());
  });

  // A click on the tile's own checkbox selects like a click on its picture. The browser has already flipped that
  // box when the click arrives and puts it back if the click is cancelled (which left it unticked, and the count
  // at 0): its click is not cancelled, and the state before the click is the box's flipped back.
  document.addEventListener("click", (e) => {
    const tile = e.target.closest && e.target.closest("#tiles .tile");
    if (!tile) return;
    const onBox = e.target === box(tile);
    if (!onBox) e.preventDefault();
    const was = onBox ? !box(tile).checked : box(tile).checked;
    const index = tiles().indexOf(tile);
    if (e.shiftKey && anchor >= 0) selectRange(index);
    else {
      setSelected(tile, !was);
      setAnchor(index);
    }
    moveCursor(index);
    refresh();
  });

  // Tab (or a click) onto a tile puts the cursor there.
  document.addEventListener("focusin", (e) => {
    const tile = e.target.closest && e.target.closest("#tiles .tile");
    if (!tile) return;
    cursor = tiles().indexOf(tile);
    rove(cursor);
  });

  // --- finding a class among many: the filter narrows the class list (chosen classes stay listed) and lists the
  // matches under it as the labeling page's search does (class-keys.js), the one Enter takes highlighted (arrows
  // move it); Enter in it chooses that match (multi-label: adds or removes it), Enter with the finder empty labels
  // the selection as a grid Enter does, Escape goes back to the grid ---
  const classSelect = () => document.getElementById("grid-class");
  const filterInput = () => document.getElementById("grid-class-filter");
  // The classes, not the "choose a class…" placeholder of a single-label menu.
  const options = () => (classSelect() ? Array.from(classSelect().options).filter((o) => o.value) : []);
  const findList = () => document.getElementById("grid-class-results");
  let findIndex = 0;  // the match Enter takes

  function showChosen() {
    const chosen = document.getElementById("grid-chosen");
    notify("");
    if (!chosen) return;
    const names = options().filter((o) => o.selected).map((o) => o.dataset.path);
    chosen.textContent = names.length ? "Chosen: " + names.join(" · ") : "No class chosen yet";
  }

  function applyFilter() {
    const query = filterInput().value;
    const found = new Set(window.LabelloopClassKeys.search(options(), query));
    options().forEach((o) => { o.hidden = Boolean(query.trim()) && !found.has(o) && !o.selected; });
    const results = options().filter((o) => found.has(o));
    findIndex = Math.min(findIndex, Math.max(0, results.length - 1));
    if (findList()) window.LabelloopClassKeys.renderResults(findList(), results, findIndex, choose);
    return results;
  }

  // Choose a found class (multi-label: add or remove it); the finder is emptied for the next one.
  function choose(option) {
    if (classSelect().multiple) option.selected = !option.selected;
    else classSelect().value = option.value;
    filterInput().value = "";
    findIndex = 0;
    applyFilter();
    option.scrollIntoView({ block: "nearest" });
    showChosen();
  }

  function backToGrid() {
    const all = tiles();
    if (all.length) moveCursor(cursor < 0 ? 0 : cursor);
    else document.activeElement.blur();
  }

  function onFilterKey(e) {
    if (e.key === "Escape") { e.preventDefault(); e.target.value = ""; applyFilter(); backToGrid(); return; }
    const results = e.target.value.trim() ? applyFilter() : [];
    const moved = window.LabelloopClassKeys.step(e.key, findIndex, results.length);
    if (moved !== null && results.length) { e.preventDefault(); findIndex = moved; applyFilter(); return; }
    if (e.key === "ArrowDown") { e.preventDefault(); classSelect().focus(); return; }
    if (e.key !== "Enter") return;
    e.preventDefault();  // a search's Enter chooses; only Enter on an empty finder labels
    if (e.repeat) return;  // a held Enter must not choose and then label
    if (!e.target.value.trim()) { submit("label"); return; }
    if (results[findIndex]) choose(results[findIndex]);
  }

  document.addEventListener("input", (e) => {
    if (e.target.id === "grid-class-filter") { findIndex = 0; applyFilter(); }
  });
  // The matches are listed while the finder has the focus only.
  document.addEventListener("focusin", (e) => { if (e.target.id === "grid-class-filter") applyFilter(); });
  document.addEventListener("focusout", (e) => {
    if (e.target.id === "grid-class-filter" && findList()) findList().hidden = true;
  });
  document.addEventListener("change", (e) => { if (e.target.id === "grid-class") showChosen(); });

  function onArrow(key, shift) {
    const all = tiles();
    if (shift && anchor < 0) {
      if (cursor < 0) cursor = 0;
      if (!box(all[cursor]).checked) setSelected(all[cursor], true);
      setAnchor(cursor);
    }
    if (cursor < 0 && !shift) { moveCursor(0); return; }
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns(), ArrowUp: -columns() }[key];
    moveCursor(cursor + step);
    if (shift) { selectRange(cursor); refresh(); }
  }

  document.addEventListener("keydown", (e) => {
    if (e.target && e.target.id === "grid-class-filter") { onFilterKey(e); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target && /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName) && e.target.type !== "checkbox") return;
    // Enter and Space on a focused button or link are its own (Enter on "Not" is "not", not "label")
    if (e.target && /^(BUTTON|A)$/.test(e.target.tagName) && (e.key === "Enter" || e.key === " ")) return;
    const all = tiles();
    if (!all.length) return;
    const key = e.key;
    if (key === "/" && filterInput()) { e.preventDefault(); filterInput().focus(); }
    else if (/^Arrow(Right|Left|Down|Up)$/.test(key)) { e.preventDefault(); onArrow(key, e.shiftKey); }
    else if (key === " ") {
      e.preventDefault();
      if (cursor < 0) moveCursor(0);
      const tile = all[cursor];
      setSelected(tile, !box(tile).checked);
      setAnchor(cursor);
      refresh();
    } else if (key === "a") {
      e.preventDefault();
      const everything = all.every((t) => box(t).checked);
      all.forEach((t) => setSelected(t, !everything));
      if (anchor >= 0) setAnchor(anchor);
      refresh();
    } else if (key === "Enter") { e.preventDefault(); submit("label"); }
    else if (key === "n") { e.preventDefault(); submit("not"); }
  });

  function init() {
    const f = form();
    if (f) f.noValidate = true;
    listbox();
    rove(0);
    refresh();
    if (classSelect()) showChosen();
  }

  // A page shown again from the back/forward cache, or whose boxes the browser restored after init.
  window.addEventListener("pageshow", () => {
    tiles().forEach((t) => setSelected(t, box(t).checked));
    const count = document.getElementById("selected-count");
    if (count) count.textContent = String(selectedCount());
  });

  // Loaded with defer the page is parsed already; a script added later (after a slow line) finds it parsed too.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
