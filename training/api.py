"""Training REST API (runs, model versions, predictions)."""

urlpatterns = []
