"""Serving: the prediction service (its own process, onnxruntime), project API keys and the prediction log."""
