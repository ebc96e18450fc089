from django.contrib import admin
from django.urls import include, path

from ris.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("worklist/", include("worklist_export.urls")),
    path("mwl/", include("mwl_server.urls")),
    path("", include("scheduling.urls")),
]
