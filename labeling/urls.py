"""Labeling URLs: each view module owns its own urlpatterns."""

from labeling.views import exports, imports, label, media, projects, review

app_name = "labeling"

urlpatterns = (
    projects.urlpatterns
    + media.urlpatterns
    + imports.urlpatterns
    + label.urlpatterns
    + review.urlpatterns
    + exports.urlpatterns
)
