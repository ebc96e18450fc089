"""Patient search from indexes on PostgreSQL (selectors.patients_matching).

- An MRN prefix (and so an exact MRN) from a btree over UPPER(mrn) with text_pattern_ops: LIKE 'HN12%'
  uses it under any database collation (a plain btree only under C).
- A name fragment from one pg_trgm GIN index over all name parts in one string, the SQL of
  selectors.patient_search_text(), to the character: the planner uses an expression index only for
  the very same expression (tests/realstack/test_scale_patients.py checks that it does).

Built CONCURRENTLY (so not in a transaction): a hospital's patient table keeps taking registrations
while the indexes build, some 10 s each at a million patients. The ANALYZE gives the planner the
expressions' statistics at once rather than at the next autovacuum. SQLite gets none of this: there
the same queries scan the table, correct and fast enough for a small clinic.
"""

from django.db import migrations

SEARCH_TEXT = (
    "REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(("
    "' ' || family_name || ' ' || given_name || ' ' || middle_name || ' ' || romanized_family_name"
    " || ' ' || romanized_given_name || ' ' || romanized_middle_name"
    "), '\u0e47', '\u0e50'), '\u0e48', '\u0e51'), '\u0e49', '\u0e52'), '\u0e4a', '\u0e53'),"
    " '\u0e4b', '\u0e54'), '\u0e4c', '\u0e55')"
)
CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS patient_mrn_prefix"
    " ON scheduling_patient (UPPER(mrn::text) text_pattern_ops)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS patient_name_trigram"
    f" ON scheduling_patient USING gin (UPPER({SEARCH_TEXT}::text) gin_trgm_ops)",
    "ANALYZE scheduling_patient",
]
DROP = [
    "DROP INDEX CONCURRENTLY IF EXISTS patient_name_trigram",
    "DROP INDEX CONCURRENTLY IF EXISTS patient_mrn_prefix",
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
    dependencies = [("scheduling", "0006_patient_order_version")]
    operations = [migrations.RunPython(forwards, backwards)]
