// Behaviour every page shares, wired here instead of inline on*= handlers or hx-trigger filters, so the
// Content-Security-Policy (script-src 'self', no eval) holds. Delegated on document: htmx-swapped markup works too.
(function () {
  "use strict";

  // <select data-autosubmit>: choosing an option submits its form (a <noscript> button covers no-JS).
  document.addEventListener("change", function (event) {
    const field = event.target;
    if (field instanceof HTMLElement && field.matches("[data-autosubmit]") && field.form) field.form.submit();
  });

  // A job status block (_job_status.html, data-status) that settles as finished tells its enclosing row, which
  // listens with hx-trigger="job-finished" to re-render itself (the download link appears).
  document.addEventListener("htmx:afterSettle", function (event) {
    const elt = event.target;  // the freshly swapped-in element
    if (!(elt instanceof HTMLElement)) return;
    const status = elt.dataset.status;
    if (status !== "succeeded" && status !== "failed") return;
    const row = elt.parentElement && elt.parentElement.closest("[data-refresh-on-finish]");
    if (row && window.htmx) window.htmx.trigger(row, "job-finished");
  });

  // A double click's second click (event.detail 2 or more) that lands on another card than its first did (the next
  // image or task, a split second after it appeared) is the hand finishing the double click, not a decision about
  // that card: it is stopped and `refuse()` says so. `cardKey()` names the card on screen. Two separate clicks, and
  // clicks made by keys, have detail 0 or 1. Used by the labeling page (label.js) and the review page (review.js).
  // The rule of the labeling and review pages (label.js, review.js): a key pressed within MS of a new image replacing
  // the last one is not applied. No one responds to a picture that fast (responses under 100 ms are anticipations),
  // so it was typed for the image before. `note` is what the page says: what was not applied, what had changed
  // ("image", "task"), how many ms before.
  window.LabelloopReaction = {
    MS: 100,
    note: (what, changed, ms) =>
      `${what} not applied: the ${changed} had changed ${Math.round(ms)} ms before, too soon to be meant for it. Press it again.`,
  };

  window.LabelloopGuardDoubleClick = function (cardSelector, cardKey, refuse) {
    let clickedOn = null;
    document.addEventListener("click", function (event) {
      if (!event.target.closest || !event.target.closest(cardSelector)) return;
      const key = cardKey();
      if (event.detail <= 1) { clickedOn = key; return; }
      if (key === clickedOn) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      refuse();
    }, true);
  };
})();
