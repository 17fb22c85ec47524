"""URLs of the serving pages (the prediction service itself is serving/wsgi_predict.py, another process)."""

from serving.views import alerts, keys, monitoring

app_name = "serving"

urlpatterns = [*keys.urlpatterns, *monitoring.urlpatterns, *alerts.urlpatterns]
