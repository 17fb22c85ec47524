"""Pages of the training app, one module per page family: the model page (model.py), model quality (quality.py),
model exports and batch inference (exports.py). Each module lists its own urlpatterns; training/urls.py joins them.
"""
