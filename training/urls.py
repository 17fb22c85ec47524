from training import views, views_export, views_quality

app_name = "training"

urlpatterns = views.urlpatterns + views_quality.urlpatterns + views_export.urlpatterns
