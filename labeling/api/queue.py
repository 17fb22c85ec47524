"""REST API for the labeling queue: next item, annotate, skip, undo."""

urlpatterns = []
