from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PacsLinkConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "pacs_link"
    verbose_name = _("PACS link")
