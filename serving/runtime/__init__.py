"""The prediction service's runtime (onnxruntime, numpy, Pillow; never torch): decoding, the model registry with
hot reload, and the prediction-log buffer. Imported only by serving/wsgi_predict.py, never by the web app."""
