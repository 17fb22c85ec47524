// The background behind a transparent image, shared by the labeling page (label.js) and the review page
// (review.js): the backgrounds b cycles through, the choice (one stored key, so both pages show the same one), and
// whether an image is a light drawing that needs the dark board.
// Loaded before the page's own script; no build step: one object on window.
window.LabelloopBackground = (function () {
  "use strict";

  const NAMES = [["checker", "checkerboard"], ["light", "light"], ["dark", "dark"]];
  const STORED = "labelloop:stage-bg";
  let chosen = null; // this page's choice, for a browser with storage off

  const known = (name) => NAMES.some(([n]) => n === name);
  function current() {
    let name = chosen;
    try { name = localStorage.getItem(STORED) || name; } catch (_) { /* storage off */ }
    return known(name) ? name : "checker";
  }
  // The next background after the current one, stored as the choice.
  function next() {
    const names = NAMES.map(([n]) => n);
    chosen = names[(names.indexOf(current()) + 1) % names.length];
    try { localStorage.setItem(STORED, chosen); } catch (_) { /* storage off: this page only */ }
    return chosen;
  }
  const title = (name) => NAMES.find(([n]) => n === name)[1];

  // Light drawings on transparency (white line art meant for dark backgrounds) would vanish on the light
  // checkerboard: the same rule the model's pixels follow (imaging/pixels.py: alpha-weighted mean luma above 0.5)
  // picks a dark one for them. Read from a 32 px copy; an image from another origin cannot be read and keeps
  // the light board (b still switches).
  const LIGHT_CONTENT = 0.5;
  function lightDrawing(img) {
    try {
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 32;
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(img, 0, 0, 32, 32);
      const px = ctx.getImageData(0, 0, 32, 32).data;
      let weight = 0, luma = 0, transparent = 0;
      for (let i = 0; i < px.length; i += 4) {
        const a = px[i + 3];
        if (a < 250) transparent += 1;
        weight += a;
        luma += a * (0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2]);
      }
      return transparent > 0 && weight > 0 && luma / weight / 255 > LIGHT_CONTENT;
    } catch (_) {
      return false;
    }
  }

  return { current, next, title, lightDrawing };
})();
