"""Model quality pages: per-version metrics, confusion matrix, reliability diagram, learning curve."""

urlpatterns = []
