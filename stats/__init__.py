"""Small statistics every app may read: the standard library only, nothing of ours (tests/test_layout.py)."""
