"""Patient search by national ID and passport number from indexes on PostgreSQL (selectors.patients_matching).

- The national ID, exact or by its first digits: a btree over national_id with varchar_pattern_ops serves
  both `=` and LIKE '350010%' under any database collation (a plain btree serves LIKE only under C).
  Not partial: the planner would use a partial one only for queries that repeat its condition, and the
  many empty values cost little (btree deduplication stores one entry for all of them).
- The passport number, exact: a btree over passport_number. The unique constraint's index leads with
  the country, which a clerk searching by the number does not type.

Built CONCURRENTLY (so not in a transaction), as 0007: the patient table keeps taking registrations while
they build. SQLite gets none of this: there the same queries scan the table.
"""

from django.db import migrations

CREATE = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS patient_national_id_prefix"
    " ON scheduling_patient (national_id varchar_pattern_ops)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS patient_passport_number ON scheduling_patient (passport_number)",
    "ANALYZE scheduling_patient",
]
DROP = [
    "DROP INDEX CONCURRENTLY IF EXISTS patient_passport_number",
    "DROP INDEX CONCURRENTLY IF EXISTS patient_national_id_prefix",
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("scheduling", "0015_patient_ids_instructions")]
    operations = [migrations.RunPython(forwards, backwards)]
