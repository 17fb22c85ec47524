"""URLs of the training pages: each module of training/views/ lists its own patterns."""

from training.views import explanations, exports, model, quality

app_name = "training"

urlpatterns = model.urlpatterns + quality.urlpatterns + exports.urlpatterns + explanations.urlpatterns
