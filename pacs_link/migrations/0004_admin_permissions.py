"""The Admin group edits the CT window presets and reads the PACS link's records (see scheduling/roles.py
ADMIN_PERMISSIONS): studies, series and the feed cursor are written by the follower and the Unmatched
studies page, never in the admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CODENAMES = (
    "add_windowpreset",
    "change_windowpreset",
    "view_windowpreset",
    "view_study",
    "view_series",
    "view_feedcursor",
)


def grant(apps, schema_editor):
    # As in scheduling 0004_roles: on a fresh database permissions exist only after post_migrate.
    app_config = apps.get_app_config("pacs_link")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="pacs_link", codename__in=CODENAMES)
    Group.objects.get_or_create(name="Admin")[0].permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="pacs_link", codename__in=CODENAMES)
    Group.objects.get(name="Admin").permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("pacs_link", "0003_study_arriving_index"),
        ("scheduling", "0004_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
