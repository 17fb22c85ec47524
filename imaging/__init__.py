"""Pixels shared by every part that reads an image: imports (thumbnails), training, scoring and serving.
Pillow and numpy only; imports nothing of ours, no Django, no torch (web processes use it)."""
