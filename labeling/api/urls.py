"""REST API URLs under /api/: each API module owns its urlpatterns."""

from labeling.api import queue, resources

urlpatterns = queue.urlpatterns + resources.urlpatterns
