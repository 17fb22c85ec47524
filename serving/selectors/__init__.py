"""Reads of the serving app, shared by the keys page, the prediction service and tasks."""
