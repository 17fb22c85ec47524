"""Model quality pages: per-version metrics, confusion matrix, reliability, learning curve (built by the review work)."""

urlpatterns = []
