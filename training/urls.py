from training import views, views_quality

app_name = "training"

urlpatterns = views.urlpatterns + views_quality.urlpatterns
