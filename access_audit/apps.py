from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccessAuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "access_audit"
    verbose_name = _("Access log")
