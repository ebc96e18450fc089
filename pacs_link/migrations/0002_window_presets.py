"""The CT windows the image page offers at first, as width/level in HU; sites edit them in the admin."""

from django.db import migrations

PRESETS = [
    # name, Thai name, width, level
    ("Brain", "สมอง", 80, 40),
    ("Subdural", "เลือดออกใต้เยื่อหุ้มสมอง", 200, 80),
    ("Stroke", "หลอดเลือดสมองตีบ", 40, 40),
    ("Lung", "ปอด", 1500, -600),
    ("Mediastinum", "ช่องกลางทรวงอก", 350, 50),
    ("Abdomen", "ช่องท้อง", 400, 50),
    ("Liver", "ตับ", 150, 30),
    ("Bone", "กระดูก", 2000, 500),
]


def add_presets(apps, schema_editor):
    WindowPreset = apps.get_model("pacs_link", "WindowPreset")
    for position, (name, name_th, width, level) in enumerate(PRESETS):
        WindowPreset.objects.get_or_create(
            name=name,
            defaults={"name_th": name_th, "modality": "CT", "width": width, "level": level, "position": position},
        )


def remove_presets(apps, schema_editor):
    apps.get_model("pacs_link", "WindowPreset").objects.filter(name__in=[p[0] for p in PRESETS]).delete()


class Migration(migrations.Migration):
    dependencies = [("pacs_link", "0001_initial")]
    operations = [migrations.RunPython(add_presets, remove_presets)]
