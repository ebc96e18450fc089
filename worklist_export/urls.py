from django.urls import path  # noqa: F401

app_name = "worklist_export"

urlpatterns: list = []
