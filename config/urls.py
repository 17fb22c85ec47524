"""Root URLconf. Media has no public URL: see labeling.views.media."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from labeling.api.errors import not_found
from labeling.views import auth, health

handler404 = not_found  # JSON under /api/, the HTML page elsewhere

urlpatterns = [
    # The admin's sign-in, before admin.site.urls so that it is the one resolved: failed attempts are limited.
    path("admin/login/", auth.admin_login),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth.login, name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include("config.api_urls")),
    path("", include("training.urls")),
    path("", include("serving.urls")),
    path("", include("labeling.urls")),
    *health.urlpatterns,
]
