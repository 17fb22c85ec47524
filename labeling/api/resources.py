"""REST API resources for ML staff: projects, classes, items, annotations, reviews, jobs."""

urlpatterns = []
