"""Celery tasks of the training app. torch is imported inside task bodies only (web imports this module)."""
