"""The definitions' change count and, on PostgreSQL, the triggers that keep it (see
pipeline.models.DefinitionsVersion). Elsewhere nothing is cached, so no trigger is needed."""

from __future__ import annotations

from django.db import migrations, models

TABLES = ("features_stage", "skills_stagerecipe", "skills_recipestep", "skills_gate", "skills_skill")

CREATE = """
CREATE OR REPLACE FUNCTION runway_definitions_changed() RETURNS trigger AS $$
BEGIN
    UPDATE pipeline_definitionsversion SET value = value + 1 WHERE id = 1;
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


def _first_row(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("pipeline", "DefinitionsVersion").objects.get_or_create(pk=1)


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
        ),
        migrations.RunPython(_first_row, migrations.RunPython.noop),
        migrations.RunPython(_run(CREATE), _run(DROP)),
    ]
