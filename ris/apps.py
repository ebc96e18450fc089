from django.apps import AppConfig


class RisConfig(AppConfig):
    """The project itself as an app, for the one signal it listens to (ris/idle.py)."""

    name = "ris"
    verbose_name = "RIS"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from ris.idle import start_idle_clock

        user_logged_in.connect(start_idle_clock, dispatch_uid="ris.idle.start_idle_clock")
