"""Root URLconf. Media has no public URL: see labeling.views.media."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from labeling.views import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include("config.api_urls")),
    path("", include("training.urls")),
    path("", include("labeling.urls")),
    *health.urlpatterns,
]
