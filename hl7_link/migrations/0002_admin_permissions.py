"""The Admin group manages the HL7 link (see scheduling/roles.py ADMIN_PERMISSIONS): senders are added and
changed, never deleted (their account is named in the history of what they booked); receivers also
deleted; the message log and the outbox are read-only."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CODENAMES = (
    "add_sender",
    "change_sender",
    "view_sender",
    "add_receiver",
    "change_receiver",
    "delete_receiver",
    "view_receiver",
    "view_message",
    "view_outboundmessage",
)


def grant(apps, schema_editor):
    # As in scheduling 0004_roles: on a fresh database permissions exist only after post_migrate.
    app_config = apps.get_app_config("hl7_link")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="hl7_link", codename__in=CODENAMES)
    Group.objects.get_or_create(name="Admin")[0].permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="hl7_link", codename__in=CODENAMES)
    Group.objects.get(name="Admin").permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("hl7_link", "0001_initial"),
        ("scheduling", "0004_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
