from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class Hl7LinkConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hl7_link"
    verbose_name = _("HL7 interface")

    def ready(self) -> None:
        # The outbound side follows the order-event stream: after each commit that changed orders, the
        # outbox is filled from the receivers' cursors and delivery is queued (hl7_link/outbox.py).
        from scheduling import events

        from .outbox import outbox_events_consumer

        events.subscribe("hl7_link", outbox_events_consumer)
