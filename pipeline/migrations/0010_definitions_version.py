"""The definitions' change count and, on PostgreSQL, the triggers that keep it (see
pipeline.models.DefinitionsVersion). Elsewhere nothing is cached, so no trigger is needed."""

from __future__ import annotations

from django.db import migrations, models

TABLES = ("features_stage", "skills_stagerecipe", "skills_recipestep", "skills_gate", "skills_skill")

# Unmanaged by Django (see the model): created here, on every backend, with its one row.
TABLE = """
CREATE TABLE IF NOT EXISTS pipeline_definitionsversion (
    id integer PRIMARY KEY,
    value bigint NOT NULL DEFAULT 0
);
INSERT INTO pipeline_definitionsversion (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
"""

CREATE = """
CREATE OR REPLACE FUNCTION runway_definitions_changed() RETURNS trigger AS $$
BEGIN
    INSERT INTO pipeline_definitionsversion (id, value) VALUES (1, 1)
        ON CONFLICT (id) DO UPDATE SET value = pipeline_definitionsversion.value + 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
""" + "".join(
    f"""
DROP TRIGGER IF EXISTS runway_definitions_changed ON {table};
CREATE TRIGGER runway_definitions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON {table} FOR EACH STATEMENT EXECUTE FUNCTION runway_definitions_changed();
"""
    for table in TABLES
)

DROP = "".join(
    f"DROP TRIGGER IF EXISTS runway_definitions_changed ON {table};\n" for table in TABLES
) + "DROP FUNCTION IF EXISTS runway_definitions_changed();\n"


def _run(sql: str):  # type: ignore[no-untyped-def]
    def apply(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return apply


def _table(apps, schema_editor):  # type: ignore[no-untyped-def]
    for statement in filter(None, (s.strip() for s in TABLE.split(";"))):
        schema_editor.execute(statement)


def _drop_table(apps, schema_editor):  # type: ignore[no-untyped-def]
    schema_editor.execute("DROP TABLE IF EXISTS pipeline_definitionsversion")


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0009_bulk_actions"),
        ("features", "0010_archived_cards"),
        ("skills", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="DefinitionsVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("value", models.BigIntegerField(default=0)),
            ],
            options={"managed": False, "db_table": "pipeline_definitionsversion"},
        ),
        migrations.RunPython(_table, _drop_table),
        migrations.RunPython(_run(CREATE), _run(DROP)),
    ]
