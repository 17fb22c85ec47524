"""Celery tasks (torch only inside task bodies)."""
