from django.apps import AppConfig


class MwlServerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mwl_server"
    verbose_name = "DICOM server (worklist, MPPS)"
