"""The three roles as groups with their model permissions (see scheduling/roles.py).

Front desk and Technologist work on the front-desk pages, checked by role there; they need no model
permission and are not staff. Admin works in the Django admin: catalog, rooms, users, corrections.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# app label -> model -> actions the Admin group may take in the Django admin.
ADMIN_PERMISSIONS = {
    "scheduling": {
        "procedure": ("add", "change", "delete", "view"),
        "room": ("add", "change", "delete", "view"),
        "openinghours": ("add", "change", "delete", "view"),
        # Corrections go through the services (see scheduling/admin.py); orders are never deleted.
        "patient": ("add", "change", "view"),
        "order": ("add", "change", "view"),
        "accessioncounter": ("view",),
    },
    "worklist_export": {"worklistentry": ("view",)},
    "auth": {"user": ("add", "change", "view"), "group": ("view",)},
}
ROLES = ("Front desk", "Technologist", "Admin")


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran (post_migrate); on a fresh database
    # they do not exist yet, so create them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    admin = Group.objects.get(name="Admin")
    codenames = [
        (app_label, f"{action}_{model}")
        for app_label, models in ADMIN_PERMISSIONS.items()
        for model, actions in models.items()
        for action in actions
    ]
    permissions = [
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
        for app_label, codename in codenames
    ]
    admin.permissions.add(*permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0003_order_discontinue_reason"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("worklist_export", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
