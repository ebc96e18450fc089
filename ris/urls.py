from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("worklist/", include("worklist_export.urls")),
    path("", include("scheduling.urls")),
]
