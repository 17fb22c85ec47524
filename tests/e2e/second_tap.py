"""The second press of a double tap, the moment the next card's image is on screen: no person can time it, so the
page does it (an init script). Set `window.__tapNext` to a key (or a list of keys, pressed in one go) before the first
press; it fires once."""


def second_tap_script(image_id: str) -> str:
    """An init script: after the next card settles and its image `#<image_id>` has loaded, press the key once."""
    return """(() => {
  document.addEventListener('htmx:afterSettle', () => {
    const key = window.__tapNext;
    if (!key) return;
    window.__tapNext = null;
    // After the page's own handlers: the card has settled and (once loaded) its image is shown.
    const tap = () => setTimeout(() => [].concat(key).forEach(
      (k) => document.body.dispatchEvent(new KeyboardEvent('keydown', {key: k, bubbles: true}))));
    const img = document.getElementById('IMAGE_ID');
    if (!img || img.complete) tap(); else img.addEventListener('load', tap, {once: true});
  });
})();""".replace("IMAGE_ID", image_id)
