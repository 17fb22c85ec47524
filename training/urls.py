from training.views import exports, model, quality

app_name = "training"

urlpatterns = model.urlpatterns + quality.urlpatterns + exports.urlpatterns
