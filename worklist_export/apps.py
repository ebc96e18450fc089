from django.apps import AppConfig


class WorklistExportConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "worklist_export"
