// Labeling page: the annotator's hold (lease) on the image on screen. The queue reserves each image for its
// annotator for LABELLOOP_LEASE_SECONDS; after that another annotator may get it. The card says when its hold ends
// (data-lease-expires and data-server-now, both by the server's clock, labeling/label.html), and this file counts
// down from their difference with a timer: no request per key, the browser's clock never read.
//
// In the hold's last minute (half of it, for a hold shorter than two minutes) a note above the image counts down (in
// a room the page keeps for it, labeling/label.html: it hides none of the image and moves nothing), and
// Space or its button keeps the image: the page asks for the labeling page again in the background, which gives
// the user's held image back under a fresh hold (labeling/services/queue.py: item_claim_next), and the card stays
// as it is (classes ticked, taxonomy level, search). Once the hold has run out the note says what the server does
// with a label now (labeling/services/annotations.py, _check_can_annotate): it still counts unless another
// annotator has taken the image meanwhile; then the server refuses it, the page says so and shows the next image.
// A new card (the next image) brings its own hold, and no note.
(function () {
  "use strict";

  const WARN_MAX_S = 60;
  // Said to run out this much before the server's hold does: the card's travel time, and a key pressed at 0:00.
  const MARGIN_MS = 1000;
  let hold = null;  // { item, deadline (performance.now() ms), lease (s), warnFrom (s), expired }
  let timer = null;
  let renewing = false;
  let counted = null;  // the card element whose hold is counted down
  let answered = null;  // the card being answered: { item, expired, kind }, from htmx:beforeSwap to htmx:afterSwap

  const card = () => document.getElementById("item-card");
  const note = () => document.getElementById("lease-note");

  function clock(seconds) {
    const s = Math.max(0, Math.ceil(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  // How long a hold lasts, in words: "10 min", "2 min 30 s", "45 s". To the second under 10 minutes: rounding 150 s
  // to "2 min" promised half a minute less than Keep it gives.
  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    if (s >= 600 || s % 60 === 0) return `${Math.round(s / 60)} min`;
    return `${Math.floor(s / 60)} min ${s % 60} s`;
  }

  function start() {
    clearInterval(timer);
    hold = null;
    renewing = false;
    const el = card();
    counted = el;
    if (!el || !el.dataset.item || !el.dataset.leaseExpires) return;
    const lease = parseFloat(el.dataset.leaseExpires) - parseFloat(el.dataset.serverNow);
    if (!Number.isFinite(lease)) return;
    hold = { item: el.dataset.item, expired: false };
    extend(lease);
    timer = setInterval(tick, 250);
  }

  // The hold runs `lease` seconds from now.
  function extend(lease) {
    hold.lease = lease;
    hold.deadline = performance.now() + lease * 1000 - MARGIN_MS;
    hold.warnFrom = Math.min(WARN_MAX_S, lease / 2);
    hold.expired = false;
    caption("reserved for you until");
    tick();
  }

  // The line under the image says until when the hold runs, and once it has run out, when it did.
  function caption(words) {
    const el = document.getElementById("lease-words");
    if (el && el.textContent !== words) el.textContent = words;
  }

  // `say` is what a screen reader is told, once per state: the countdown itself would be read out every second.
  function show(state, text, say) {
    const el = note();
    if (!el) return;
    if (el.dataset.state !== state) el.querySelector(".lease-say").textContent = say;
    el.dataset.state = state;
    const line = el.querySelector(".lease-text");
    if (line.textContent !== text) line.textContent = text;  // once a second, not at every tick
    el.hidden = false;
  }

  function tick() {
    const el = note();
    if (!hold || !card() || card().dataset.item !== hold.item || !el) { clearInterval(timer); return; }
    if (renewing) return;
    const left = (hold.deadline - performance.now()) / 1000;
    if (left > hold.warnFrom) {
      el.hidden = true;
      delete el.dataset.state;
    } else if (left > 0) {
      show("warning", `This image returns to the queue in ${clock(left)}: label it now, or keep it for another ${duration(hold.lease)}.`,
        `This image returns to the queue in ${duration(left)}: label it now, or press Space to keep it.`);
    } else if (!hold.expired) {
      hold.expired = true;
      caption("your hold ran out at");
      // The words are the page's (.lease-room, which also sizes the note's room): said here in full.
      show("expired", el.querySelector(".lease-room").textContent,
        "Your hold on this image has run out: another annotator may get it now.");
    }
  }

  // Ask for the labeling page (its card only, not swapped in): while the user holds this image, that renews the
  // hold. After it ran out the queue may hand out another image: then the page shows that one.
  async function keep() {
    if (!hold || renewing || !note() || note().hidden || card().getAttribute("aria-busy") === "true") return;
    renewing = true;
    const el = note();
    el.querySelector(".lease-text").textContent = "Keeping this image…";
    let next = null;
    try {
      const response = await fetch(el.dataset.renew, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
      if (response.ok) next = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("item-card");
    } catch (_) { /* offline: said below */ }
    renewing = false;
    if (!hold || !card() || card().dataset.item !== hold.item) return;  // the card was answered meanwhile
    if (next && next.dataset.item === hold.item && next.dataset.leaseExpires) {
      extend(parseFloat(next.dataset.leaseExpires) - parseFloat(next.dataset.serverNow));
      const until = document.getElementById("lease-until");
      const fresh = next.querySelector("#lease-until");
      if (until && fresh) until.textContent = fresh.textContent;
      el.querySelector(".lease-say").textContent = `Kept: this image is yours for another ${duration(hold.lease)}.`;
      return;
    }
    if (next && hold.expired) { window.location.reload(); return; }  // the queue gave this user another image
    tick();
    el.querySelector(".lease-say").textContent = el.querySelector(".lease-text").textContent = next
      ? "Could not keep this image (another of your tabs holds an image of this project): label it before the time runs out."
      : "Could not reach the server to keep this image: label it, or press Space to try again.";
  }

  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("#lease-keep")) { e.preventDefault(); keep(); }
  });
  // Capture: before label.js, so Space keeps the image instead of pressing a focused button.
  document.addEventListener("keydown", (e) => {
    if (e.key !== " " || e.ctrlKey || e.metaKey || e.altKey || !note() || note().hidden) return;
    if (e.target && /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName) && e.target.type !== "checkbox") return;
    e.preventDefault();
    e.stopPropagation();
    if (!e.repeat) keep();
  }, true);

  // A label or skip of an image whose hold had run out, refused because another annotator took it (409): the
  // server's words come on the next card; say that it was this image and that nothing of it was saved.
  document.addEventListener("htmx:beforeSwap", (e) => {
    if (!e.detail.target || e.detail.target.id !== "item-card") return;
    const form = e.detail.requestConfig && e.detail.requestConfig.elt && e.detail.requestConfig.elt.closest("form");
    const kind = form && form.id === "skip-form" ? "skip" : form && form.id === "label-form" ? "label" : null;
    answered = hold && kind ? { item: hold.item, expired: hold.expired, kind, status: e.detail.xhr.status } : null;
  });
  // A new card (not a heatmap swapped into this one) brings its own hold.
  document.addEventListener("htmx:afterSwap", () => {
    if (!card() || card() === counted) return;
    const was = answered;
    answered = null;
    start();
    const notice = card().querySelector(".notice-slot .notice");
    if (!was || !was.expired || was.status !== 409 || !notice || notice.textContent.startsWith("You have already")) return;
    notice.textContent = `Your ${was.kind} of image #${was.item} was not saved: your hold on it had run out. ${notice.textContent}`;
  });
  document.addEventListener("DOMContentLoaded", start);
})();
