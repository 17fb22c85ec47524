"""Celery tasks of the labeling app: thin wrappers that take ids and call one service."""
