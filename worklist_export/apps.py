from django.apps import AppConfig


class WorklistExportConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "worklist_export"

    def ready(self) -> None:
        # The export follows the order-event stream: after each commit that changed orders, their files
        # are queued (worklist_export.tasks.worklist_events_consumer). The periodic reconcile catches up
        # on whatever a down broker or a crash kept from being queued.
        from scheduling import events

        from .tasks import worklist_events_consumer

        events.subscribe("worklist_export", worklist_events_consumer)
