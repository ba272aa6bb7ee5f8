"""GET /api/openapi.json and /api/docs: the schema and its browsable docs, served locally."""

from __future__ import annotations

from django.test import Client


def test_it_serves_an_openapi_3_schema_of_every_endpoint(db):
    response = Client().get("/api/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/workspaces",
        "/api/features",
        "/api/features/{id}",
        "/api/features/{id}/move",
        "/api/features/{id}/launch",
        "/api/features/{id}/launch/stop",
        "/api/features/{id}/tree",
        "/api/features/{id}/tree/launch",
        "/api/features/{id}/subtasks",
        "/api/workspaces/{slug}/tree",
        "/api/batches",
        "/api/batches/{id}",
        "/api/batches/{id}/stop",
        "/api/batches/{id}/retry",
        "/api/runs",
        "/api/runs/{id}",
        "/api/runs/{id}/logs",
        "/api/workers",
        "/api/bulk-actions",
        "/api/bulk-actions/preview",
        "/api/bulk-actions/{id}",
        "/api/bulk-actions/{id}/cancel",
        "/api/skills",
        "/api/skills/sync",
        "/api/skills/{id}",
        "/api/recipes",
        "/api/recipes/{id}",
        "/api/recipes/{id}/validate",
    }
    schemes = schema["components"]["securitySchemes"]
    assert schemes["TokenAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["SessionAuth"]["in"] == "cookie"


def test_it_documents_the_error_shape_for_every_failure(db):
    schema = Client().get("/api/openapi.json").json()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            failures = {code for code in operation["responses"] if code.startswith(("4", "5"))}
            assert {"401", "404", "422"} <= failures, (method, path)
            for code in failures:
                content = operation["responses"][code]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorOut"}


def test_it_serves_the_docs_without_a_cdn(db):
    response = Client().get("/api/docs")

    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "cdn." not in page
    assert "/api/openapi.json" in page
