// Heatmap overlays (training/views/explanations.py): where the model sees a class, stacked over the image.
// A layer (.explain-layer) sits over an image; the server's fragment inside it shows a spinner and polls until the
// heatmap is ready. h shows or hides every layer of the page (the labeling page starts hidden, the review pages
// shown); a click on an element with data-explain-url loads that class's heatmap into the layer it names.
// The labeling and review pages call toggle() from their own key handlers; the lists mark data-explain-keys.
// A layer may name a caption (data-caption, the labeling page's): while the layer is shown it says which class and
// version the heatmap is of, in the fragment's own words (training/_explanation.html), so the clicked class's too.
(function () {
  "use strict";

  const layers = () => Array.from(document.querySelectorAll(".explain-layer"));
  let shown = null;  // null until the first toggle: each layer keeps its data-default until then

  function isOn(layer) {
    return shown === null ? layer.dataset.default !== "off" : shown;
  }

  // A layer over an image whose box is not its parent's (the labeling page's stage): put it on the image's box.
  function place(layer) {
    const img = layer.dataset.over ? document.getElementById(layer.dataset.over) : null;
    if (!img) return;
    layer.style.left = `${img.offsetLeft}px`;
    layer.style.top = `${img.offsetTop}px`;
    layer.style.width = `${img.offsetWidth}px`;
    layer.style.height = `${img.offsetHeight}px`;
  }

  // The fragment's words for what it shows: the overlay's title ("Where model v3 sees 3 (39%)"), else the pill's.
  function said(layer) {
    const source = layer.querySelector("img.explain-overlay, .explain-status");
    return source ? (source.getAttribute("title") || source.textContent).trim() : "";
  }

  function caption(layer) {
    const el = layer.dataset.caption ? document.getElementById(layer.dataset.caption) : null;
    if (!el) return;
    const text = layer.hidden ? "" : said(layer);
    if (el.textContent !== text) { el.textContent = text; el.title = text; }
    el.classList.toggle("off", !text);
  }

  function apply() {
    layers().forEach((layer) => {
      layer.hidden = !isOn(layer);
      if (!layer.hidden) place(layer);
      caption(layer);
    });
  }

  function toggle(force) {
    const current = layers().some((layer) => isOn(layer));
    shown = force === undefined ? !current : Boolean(force);
    apply();
    return shown;
  }

  // Replace a layer's heatmap with another class's (a fresh fragment that asks the server, then polls).
  function load(layer, url) {
    if (!layer || !url || !window.htmx) return;
    const el = document.createElement("div");
    el.className = "explain";
    el.dataset.explain = "loading";
    el.setAttribute("hx-get", url);
    el.setAttribute("hx-trigger", "load");
    el.setAttribute("hx-swap", "outerHTML");
    el.style.position = "absolute";
    el.style.inset = "0";
    layer.replaceChildren(el);
    window.htmx.process(el);
  }

  // htmx events of the heatmaps (their polls and swaps): the pages' own htmx handlers leave these alone.
  function isExplainEvent(e) {
    const inside = (node) => Boolean(node && node.closest && node.closest(".explain, .explain-layer"));
    return inside(e.target) || inside(e.detail && e.detail.target) || inside(e.detail && e.detail.elt);
  }

  document.addEventListener("click", (e) => {
    const trigger = e.target.closest && e.target.closest("[data-explain-url]");
    if (!trigger) return;
    const layer = document.getElementById(trigger.dataset.explainLayer || "explain-slot");
    load(layer, trigger.dataset.explainUrl);
    document.querySelectorAll("[data-explain-url]").forEach((el) => el.removeAttribute("aria-current"));
    trigger.setAttribute("aria-current", "true");
    toggle(true);
  });

  document.addEventListener("keydown", (e) => {
    if (e.key !== "h" || e.ctrlKey || e.metaKey || e.altKey || !document.querySelector("[data-explain-keys]")) return;
    if (e.target && /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName)) return;
    toggle();
    e.preventDefault();
  });

  window.addEventListener("resize", apply);
  document.addEventListener("htmx:afterSettle", apply);
  document.addEventListener("DOMContentLoaded", apply);
  window.LabelloopExplain = { toggle, apply, load, isExplainEvent, place };
})();
