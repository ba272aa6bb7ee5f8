"""URLs of the boards and card pages: workspaces, cards and the actions on them."""

from __future__ import annotations

from django.urls import path, re_path

from pipeline.views import (
    archive,
    board,
    cards,
    detail,
    health_checks,
    palette,
    rerun,
    settings,
    stories,
)

# The board and card pages keep the "features" URL namespace (features:board, features:detail):
# URLs name what a person sees, while the views live here because they show cards with their runs.
app_name = "features"

urlpatterns = [
    # Workspaces
    path("", board.home, name="home"),
    path("w/<slug:slug>/", board.board, name="board"),
    path("w/<slug:slug>/features/new", cards.new_feature, name="new"),
    path("w/<slug:slug>/columns/<int:stage_id>/more", board.column_more, name="column_more"),
    path("w/<slug:slug>/palette", palette.palette_search, name="palette"),
    path("w/<slug:slug>/worker-banner", board.worker_banner, name="worker_banner"),
    path("w/<slug:slug>/settings", settings.workspace_settings, name="settings"),
    path("w/<slug:slug>/settings/kinds", settings.kind_stages, name="kind_stages"),
    # The tree: stories by epic, subtasks by story, and batches of their runs
    path("w/<slug:slug>/stories/", stories.stories_page, name="stories"),
    path("w/<slug:slug>/stories/kpis", stories.stories_kpis, name="stories_kpis"),
    path("w/<slug:slug>/subtasks/", stories.subtasks_page, name="subtasks"),
    path("w/<slug:slug>/batches/<int:pk>/", stories.batch_progress, name="batch"),
    path("w/<slug:slug>/batches/<int:pk>/stop", stories.stop_batch, name="batch_stop"),
    path("w/<slug:slug>/batches/<int:pk>/retry", stories.retry_batch, name="batch_retry"),
    path("features/<int:pk>/tree", stories.epic_tree, name="epic_tree"),
    path("features/<int:pk>/tree/launch", stories.launch_tree, name="launch_tree"),
    path(
        "features/<int:pk>/subtasks/generate", stories.generate_subtasks, name="generate_subtasks"
    ),
    # Cards
    path("features/<int:pk>/", detail.feature_detail, name="detail"),
    path("features/<int:pk>/move", cards.move_card, name="move"),
    path("features/<int:pk>/archive", archive.archive, name="archive"),
    path("features/<int:pk>/unarchive", archive.unarchive, name="unarchive"),
    path("features/<int:pk>/edit", detail.edit_feature, name="edit"),
    path("features/<int:pk>/health", health_checks.set_health_check, name="health"),
    path(
        "features/<int:pk>/artifacts/<path:name>/diff", detail.artifact_diff, name="artifact_diff"
    ),
    path("features/<int:pk>/runs/<int:run_id>/rerun", rerun.rerun, name="rerun"),
    re_path(
        r"^features/(?P<pk>[0-9]+)/(?P<action>launch|stop|retry|start|accept|reject)$",
        cards.card_action,
        name="action",
    ),
]
