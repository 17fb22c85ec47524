// Review page: a accept, r reject, c then a class key to correct (multi-label: toggle, Enter saves),
// n / j next, Esc cancels a correction. The server renders every card; this file turns keys into submits.
(function () {
  "use strict";

  let correcting = false;
  let busy = false;

  const card = () => document.getElementById("review-card");
  const form = () => document.getElementById("verdict-form");
  const fieldset = () => document.getElementById("correct-classes");
  const isMulti = () => card() && card().dataset.multi === "1";

  function typing(event) {
    const t = event.target;
    return t && (t.tagName === "INPUT" && t.type === "text" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }

  function submit(verdict) {
    const f = form();
    if (!f || busy) return;
    const button = f.querySelector(`button[type=submit][value="${verdict}"]`);
    if (!button) return;
    busy = true;
    // The hidden field carries the verdict whether or not the submitter button's value is sent along.
    f.querySelector("#verdict-value").value = verdict;
    f.requestSubmit(button);
  }

  function setCorrecting(on) {
    const fs = fieldset();
    if (!fs) return;
    correcting = on;
    fs.hidden = !on;
    document.getElementById("correct-toggle")?.classList.toggle("on", on);
    if (!on) fs.querySelectorAll("input[type=checkbox]").forEach((box) => { box.checked = false; });
  }

  function classByKey(key) {
    const fs = fieldset();
    return fs ? Array.from(fs.querySelectorAll(".class-btn")).find((l) => l.dataset.key === key) : null;
  }

  function pickClass(label) {
    const box = label.querySelector("input[type=checkbox]");
    if (isMulti()) {
      box.checked = !box.checked;
      label.classList.toggle("on", box.checked);
      return;
    }
    fieldset().querySelectorAll("input[type=checkbox]").forEach((b) => { b.checked = b === box; });
    submit("correct");
  }

  function next() {
    const c = card();
    if (c && c.dataset.task) window.location.assign(c.dataset.next);
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    const key = event.key.toLowerCase();
    if (correcting) {
      if (key === "escape") { setCorrecting(false); event.preventDefault(); return; }
      if (key === "enter" && isMulti()) { submit("correct"); event.preventDefault(); return; }
      const label = classByKey(key);
      if (label) { pickClass(label); event.preventDefault(); }
      return;
    }
    if (key === "a") { submit("accept"); event.preventDefault(); }
    else if (key === "r") { submit("reject"); event.preventDefault(); }
    else if (key === "c") { setCorrecting(true); event.preventDefault(); }
    else if (key === "n" || key === "j") { next(); event.preventDefault(); }
  });

  document.addEventListener("click", (event) => {
    const toggle = event.target.closest("#correct-toggle");
    if (toggle) setCorrecting(!correcting);
    const button = event.target.closest("#verdict-form button[type=submit][name=verdict]");
    if (button) document.getElementById("verdict-value").value = button.value;
  });

  // A new card arrived (htmx swap) or a request ended: reset the state.
  document.addEventListener("htmx:afterSwap", () => { busy = false; setCorrecting(false); });
  document.addEventListener("htmx:afterRequest", () => { busy = false; });
  // htmx does not swap 4xx responses by default; the card with the error message should replace the old one.
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.xhr.status === 400) { event.detail.shouldSwap = true; event.detail.isError = false; }
  });
})();
