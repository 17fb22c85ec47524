"""Writes of the serving app: API keys, serving settings, the prediction log."""
