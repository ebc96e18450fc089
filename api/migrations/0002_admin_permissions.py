"""The Admin group manages API clients (see scheduling/roles.py ADMIN_PERMISSIONS): add, change, view;
never delete (a client's account is named in the history of what it changed)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CODENAMES = ("add_apiclient", "change_apiclient", "view_apiclient")


def grant(apps, schema_editor):
    # As in scheduling 0004_roles: on a fresh database permissions exist only after post_migrate.
    app_config = apps.get_app_config("api")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="api", codename__in=CODENAMES)
    Group.objects.get_or_create(name="Admin")[0].permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="api", codename__in=CODENAMES)
    Group.objects.get(name="Admin").permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("scheduling", "0004_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
