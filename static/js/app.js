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
})();
