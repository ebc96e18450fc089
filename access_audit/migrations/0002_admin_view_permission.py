"""The Admin group may view the access log (see scheduling/roles.py ADMIN_PERMISSIONS); nobody may add,
change or delete it in the admin (access_audit/admin.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    # As in scheduling 0004_roles: on a fresh database the permissions are only created after all
    # migrations ran (post_migrate), so create this app's now.
    app_config = apps.get_app_config("access_audit")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.get(content_type__app_label="access_audit", codename="view_accessevent")
    Group.objects.get(name="Admin").permissions.add(view)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.filter(content_type__app_label="access_audit", codename="view_accessevent")
    Group.objects.get(name="Admin").permissions.remove(*view)


class Migration(migrations.Migration):
    dependencies = [
        ("access_audit", "0001_initial"),
        ("scheduling", "0004_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
