from __future__ import annotations

from django.urls import path

from skills import views

app_name = "skills"

urlpatterns = [
    # Skills catalog
    path("w/<slug:slug>/skills/", views.catalog, name="catalog"),
    path("w/<slug:slug>/skills/import", views.import_skill, name="import"),
    path("w/<slug:slug>/skills/<int:pk>/export", views.export_skill, name="export"),
    path("w/<slug:slug>/skills/<int:pk>/vet", views.vet_skill, name="vet"),
    # Stage recipes
    path("w/<slug:slug>/recipes/<slug:stage>/", views.recipe_editor, name="recipe"),
    path(
        "w/<slug:slug>/recipes/<slug:stage>/prompts/<int:pk>",
        views.edit_prompt,
        name="edit_prompt",
    ),
]
