"""Health checks of live cards: http and command checks, their history, one incident per outage
(with its pipeline launched), the recovery note, the badge, the CLI, the form and the beat task.

HTTP checks talk to a server on 127.0.0.1 in a thread of the test, which the operator's
allow-list lets through (loopback is refused otherwise: tests/test_outbound.py); nothing leaves
the machine. Command checks run commands the operator defined (HEALTH_CHECK_COMMANDS).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from features import health, tasks
from features.models import Feature, HealthCheckResult, StageTransition
from pipeline import engine
from pipeline.models import Run
from skills.models import RecipeStep, Skill, StageRecipe
from tests.cli_helpers import pipeline
from tests.conftest import Story
from tests.factories import FeatureFactory
from tests.http_servers import RecordingServer, closed_port, http_server

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _loopback_allowed(settings: Any) -> None:
    settings.RUNWAY_OUTBOUND_ALLOW = ["127.0.0.1/32"]


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    """A local HTTP server answering every GET with `server.status`."""
    with http_server() as httpd:
        yield httpd


def set_status(httpd: RecordingServer, status: int) -> None:
    httpd.behaviour.status = status


PY = sys.executable


@pytest.fixture
def commands_on(settings: Any) -> None:
    """The operator's commands: exit with a given code, print, hang, show the environment."""
    settings.HEALTH_CHECK_COMMANDS = {
        "exit": {"argv": [PY, "-c", "import sys; sys.exit(int(sys.argv[1]))"], "args": ["0", "1"]},
        "chatty": [PY, "-c", "print('\\n  disk 93% full\\x07 ' + 'x' * 300); print('more')"],
        "hang": [PY, "-c", "import threading; threading.Event().wait()"],
        "env": [PY, "-c", "import os; print(' '.join(sorted(os.environ)))"],
    }


def url_of(httpd: RecordingServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/health"


def live_card(story: Story, config: dict[str, Any], title: str = "Invoice extractor") -> Feature:
    return FeatureFactory.create(
        workspace=story.workspace,
        title=title,
        stage=story.workspace.stages.get(key="live"),
        health_check=health.validate_health_check(config),
    )


def exit_with(code: int) -> dict[str, Any]:
    return {"type": "command", "command": "exit", "args": [str(code)]}


def incidents(feature: Feature) -> list[Feature]:
    return list(feature.children.filter(kind=Feature.Kind.INCIDENT))


# --- http --------------------------------------------------------------------------------------


def test_it_passes_an_http_check_and_keeps_the_result(
    delivery_story: Story, server: RecordingServer
) -> None:
    feature = live_card(delivery_story, {"type": "http", "url": url_of(server), "every": "5m"})

    result = health.run_health_check(feature)

    assert (result.ok, result.detail) == (True, "HTTP 200 (expected 200)")
    assert result.duration_ms >= 0
    assert list(feature.health_results.all()) == [result]
    assert incidents(feature) == []


def test_it_fails_an_http_check_on_an_unexpected_status(
    delivery_story: Story, server: RecordingServer
) -> None:
    server.behaviour.status = 503
    feature = live_card(delivery_story, {"type": "http", "url": url_of(server)})

    result = health.run_health_check(feature)

    assert (result.ok, result.detail) == (False, "HTTP 503 (expected 200)")


def test_it_accepts_the_status_it_was_told_to_expect(
    delivery_story: Story, server: RecordingServer
) -> None:
    server.behaviour.status = 204
    feature = live_card(
        delivery_story, {"type": "http", "url": url_of(server), "expect": "status:204"}
    )

    assert health.run_health_check(feature).ok


def test_it_fails_when_nothing_listens_and_says_only_unreachable(delivery_story: Story) -> None:
    port = closed_port()
    feature = live_card(delivery_story, {"type": "http", "url": f"http://127.0.0.1:{port}/"})

    result = health.run_health_check(feature)

    # Not "Connection refused": the difference between closed, filtered and slow ports is
    # what a port scan needs.
    assert (result.ok, result.detail) == (False, "Unreachable")


def test_a_check_aimed_at_a_private_address_is_refused_and_sends_nothing(
    delivery_story: Story, server: RecordingServer, settings: Any, no_enqueue: Any
) -> None:
    feature = live_card(delivery_story, {"type": "http", "url": url_of(server)})
    settings.RUNWAY_OUTBOUND_ALLOW = []

    with pytest.raises(health.HealthCheckError, match="loopback"):
        health.do_set_health_check(
            feature, {"type": "http", "url": url_of(server)}, delivery_story.owner
        )
    with no_enqueue():
        result = health.run_health_check(feature)

    assert not result.ok
    assert "loopback" in result.detail
    assert server.requests == []


def test_a_redirect_to_an_address_that_is_not_allowed_fails_the_check(
    delivery_story: Story, server: RecordingServer, no_enqueue: Any
) -> None:
    with http_server("127.0.0.2") as internal:
        server.behaviour.status = 302
        server.behaviour.headers["Location"] = internal.url("/admin")
        feature = live_card(delivery_story, {"type": "http", "url": url_of(server)})

        with no_enqueue():
            result = health.run_health_check(feature)

        assert not result.ok
        assert "loopback" in result.detail
        assert internal.requests == []


# --- incidents -------------------------------------------------------------------------------


def test_a_failure_opens_an_incident_linked_to_the_feature_and_launches_it(
    delivery_story: Story, server: RecordingServer, no_enqueue: Any
) -> None:
    server.behaviour.status = 500
    feature = live_card(delivery_story, {"type": "http", "url": url_of(server)})

    with no_enqueue():
        health.run_health_check(feature)

    (incident,) = incidents(feature)
    assert incident.title == "Health check failing: Invoice extractor"
    assert "HTTP 500 (expected 200)" in incident.description
    created = StageTransition.objects.filter(feature=incident).order_by("id").first()
    assert created is not None
    assert created.note == "Opened by health check: HTTP 500 (expected 200)"
    # The incident's pipeline runs: delivery's idea has no recipe, so it starts at spec.
    run = Run.objects.get(feature=incident)
    assert (run.stage.key, run.status) == ("spec", Run.Status.QUEUED)
    incident.refresh_from_db()
    assert incident.stage.key == "spec"


def test_an_incident_at_a_human_approval_stage_waits_for_start(
    delivery_story: Story, server: RecordingServer, no_enqueue: Any
) -> None:
    spec = delivery_story.workspace.stages.get(key="spec")
    StageRecipe.objects.filter(stage=spec).update(automation=StageRecipe.Automation.HUMAN_APPROVAL)
    server.behaviour.status = 500
    feature = live_card(delivery_story, {"type": "http", "url": url_of(server)})

    with no_enqueue() as sent:
        health.run_health_check(feature)

    (incident,) = incidents(feature)
    run = Run.objects.get(feature=incident)
    # Launched by the health check, with nobody's approval: it waits like any such stage.
    assert (run.stage.key, run.status, run.trigger, run.triggered_by) == (
        "spec",
        Run.Status.AWAITING_APPROVAL,
        Run.Trigger.HEALTH_CHECK,
        None,
    )
    assert run.logs.filter(message__startswith="Launched by a failing health check").exists()
    assert (incident.status, incident.status_note) == (
        Feature.Status.AWAITING_APPROVAL,
        "Spec waits for someone to start it",
    )
    assert not [c for c in sent if getattr(c, "func", None) is engine.enqueue]

    with no_enqueue():
        engine.start_run(run, delegate := delivery_story.teammate)
    run.refresh_from_db()
    assert (run.status, run.triggered_by) == (Run.Status.QUEUED, delegate)


def test_an_incident_whose_stage_uses_unvetted_skills_waits_for_start(
    delivery_story: Story, server: RecordingServer, no_enqueue: Any
) -> None:
    spec = delivery_story.workspace.stages.get(key="spec")
    step = RecipeStep.objects.filter(recipe__stage=spec).select_related("skill").first()
    assert step is not None
    unvetted = Skill.objects.get(pk=step.skill_id)
    unvetted.pk, unvetted.trust = None, Skill.Trust.COMMUNITY
    unvetted.workspace, unvetted.version = delivery_story.workspace, unvetted.version + 1
    unvetted.save()
    RecipeStep.objects.filter(pk=step.pk).update(skill=unvetted)
    server.behaviour.status = 500
    feature = live_card(delivery_story, {"type": "http", "url": url_of(server)})

    with no_enqueue():
        health.run_health_check(feature)

    (incident,) = incidents(feature)
    run = Run.objects.get(feature=incident)
    assert run.status == Run.Status.AWAITING_APPROVAL
    assert "unvetted skill" in incident.status_note


def test_three_failures_open_one_incident(
    delivery_story: Story, server: RecordingServer, no_enqueue: Any
) -> None:
    server.behaviour.status = 500
    feature = live_card(delivery_story, {"type": "http", "url": url_of(server)})

    with no_enqueue():
        for _ in range(3):
            health.run_health_check(feature)

    assert len(incidents(feature)) == 1
    assert feature.health_results.filter(ok=False).count() == 3


def test_a_new_outage_after_the_incident_is_closed_opens_a_new_one(
    delivery_story: Story, server: RecordingServer, no_enqueue: Any
) -> None:
    server.behaviour.status = 500
    feature = live_card(delivery_story, {"type": "http", "url": url_of(server)})
    with no_enqueue():
        health.run_health_check(feature)
        (first,) = incidents(feature)
        Feature.objects.filter(pk=first.pk).update(
            stage=delivery_story.workspace.stages.get(key="done")
        )
        health.run_health_check(feature)

    assert len(incidents(feature)) == 2


def test_it_notes_the_recovery_on_the_open_incident(
    delivery_story: Story, server: RecordingServer, no_enqueue: Any
) -> None:
    server.behaviour.status = 500
    feature = live_card(delivery_story, {"type": "http", "url": url_of(server)})
    with no_enqueue():
        health.run_health_check(feature)
        server.behaviour.status = 200
        passed = health.run_health_check(feature)
        health.run_health_check(feature)  # still passing: noted once, not again

    (incident,) = incidents(feature)
    when = f"{passed.checked_at:%Y-%m-%d %H:%M} UTC"
    assert incident.description.count("Recovered at") == 1
    assert incident.description.endswith(f"Recovered at {when}: HTTP 200 (expected 200)")


def test_the_board_badge_follows_the_latest_result(
    delivery_story: Story, server: RecordingServer, no_enqueue: Any
) -> None:
    feature = live_card(delivery_story, {"type": "http", "url": url_of(server)})
    client = delivery_story.client_for(delivery_story.viewer)
    board = reverse("features:board", args=[delivery_story.workspace.slug])

    assert "● not checked" in client.get(board).content.decode()
    server.behaviour.status = 500
    with no_enqueue():
        health.run_health_check(feature)
    failing = client.get(board).content.decode()
    server.behaviour.status = 200
    with no_enqueue():
        health.run_health_check(feature)
    healthy = client.get(board).content.decode()

    assert "● failing" in failing
    assert "⚠ 1 incident" in failing
    assert "● healthy" in healthy
    assert "● failing" not in healthy


# --- commands ----------------------------------------------------------------------------------


def test_a_command_check_runs_an_operator_command_by_name(
    delivery_story: Story, commands_on: None, no_enqueue: Any
) -> None:
    passing = live_card(delivery_story, exit_with(0))
    failing = live_card(delivery_story, exit_with(1), "Exporter")

    with no_enqueue():
        ok = health.run_health_check(passing)
        bad = health.run_health_check(failing)

    assert (ok.ok, ok.detail) == (True, "exit code 0 (expected 0)")
    assert (bad.ok, bad.detail) == (False, "exit code 1 (expected 0)")
    assert len(incidents(failing)) == 1


def test_a_command_check_keeps_one_status_line_of_output(
    delivery_story: Story, commands_on: None, no_enqueue: Any
) -> None:
    feature = live_card(delivery_story, {"type": "command", "command": "chatty"})

    result = health.run_health_check(feature)

    line = result.detail.removeprefix("exit code 0 (expected 0): ")
    assert line.startswith("disk 93% full xxx")
    assert len(line) == 120
    assert line.endswith("…")
    assert "more" not in result.detail
    assert "\x07" not in result.detail


def test_a_command_check_runs_without_the_workers_environment(
    delivery_story: Story, commands_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNWAY_TEST_SECRET", "s3cret")
    feature = live_card(delivery_story, {"type": "command", "command": "env"})

    result = health.run_health_check(feature)

    assert "RUNWAY_TEST_SECRET" in os.environ
    assert result.detail == "exit code 0 (expected 0): LANG LC_ALL PATH"


def test_a_command_check_times_out(delivery_story: Story, commands_on: None) -> None:
    # A child that waits forever: the check gives up after its timeout and kills its group.
    feature = live_card(delivery_story, {"type": "command", "command": "hang", "timeout": 1})

    result = health.run_health_check(feature)

    assert (result.ok, result.detail) == (False, "Timed out after 1 s")


def test_a_workspace_cannot_run_a_command_or_argument_the_operator_did_not_define(
    delivery_story: Story, commands_on: None
) -> None:
    feature = live_card(delivery_story, {})

    for config, message in [
        ({"type": "command", "command": "rm -rf /"}, "Unknown command"),
        ({"type": "command", "command": PY}, "Unknown command"),
        ({"type": "command", "command": "exit", "args": ["0; rm -rf /"]}, "not allowed"),
        ({"type": "command", "command": "exit", "args": ["2"]}, "not allowed"),
    ]:
        with pytest.raises(health.HealthCheckError, match=message):
            health.do_set_health_check(feature, config, delivery_story.owner)
    feature.refresh_from_db()
    assert feature.health_check == {}


def test_command_checks_are_refused_when_the_operator_defined_none(delivery_story: Story) -> None:
    feature = live_card(delivery_story, {"type": "http", "url": "http://127.0.0.1:9/"})

    with pytest.raises(health.HealthCheckError, match="HEALTH_CHECK_COMMANDS"):
        health.do_set_health_check(feature, exit_with(0), delivery_story.owner)
    feature.health_check = health.validate_health_check(exit_with(0))
    with pytest.raises(health.HealthCheckError, match="Command checks are off"):
        health.run_health_check(feature)
    assert not HealthCheckResult.objects.exists()


def test_a_bad_operator_command_list_stops_with_its_name(settings: Any) -> None:
    settings.HEALTH_CHECK_COMMANDS = {"disk": {"argv": "df -h"}}

    with pytest.raises(ImproperlyConfigured, match="disk"):
        health.commands_allowed()


def test_only_owners_and_admins_set_command_checks(
    delivery_story: Story, commands_on: None
) -> None:
    feature = live_card(delivery_story, {})
    config = exit_with(0)

    with pytest.raises(health.HealthCheckError, match="owners and admins"):
        health.do_set_health_check(feature, config, delivery_story.teammate)
    with pytest.raises(health.HealthCheckError, match="Only members"):
        health.do_set_health_check(feature, config, delivery_story.viewer)
    feature.refresh_from_db()
    assert feature.health_check == {}

    health.do_set_health_check(feature, config, delivery_story.owner)
    feature.refresh_from_db()
    assert feature.health_check["type"] == "command"


def test_a_workspace_has_at_most_its_cap_of_checks(delivery_story: Story, settings: Any) -> None:
    settings.HEALTH_CHECK_MAX_PER_WORKSPACE = 2
    config = {"type": "http", "url": "http://127.0.0.1:9/"}
    first, second = live_card(delivery_story, config), live_card(delivery_story, config, "B")
    third = live_card(delivery_story, {}, "C")

    with pytest.raises(health.HealthCheckError, match="HEALTH_CHECK_MAX_PER_WORKSPACE=2"):
        health.do_set_health_check(third, config, delivery_story.owner)
    health.do_set_health_check(first, {**config, "every": "5m"}, delivery_story.owner)  # a change
    health.do_set_health_check(second, {}, delivery_story.owner)
    health.do_set_health_check(third, config, delivery_story.owner)  # room again

    third.refresh_from_db()
    assert third.health_check["url"] == config["url"]


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "ping"}, "Unknown check type"),
        ({"type": "http"}, "needs a url"),
        ({"type": "http", "url": "file:///etc/passwd"}, "not an http"),
        ({"type": "http", "url": "http://x/", "every": "often"}, "Unknown frequency"),
        ({"type": "http", "url": "http://x/", "every": "10s"}, "at most once a minute"),
        ({"type": "http", "url": "http://x/", "expect": "exit_code:0"}, "not understood"),
        ({"type": "http", "url": "http://x/", "timeout": 600}, "Timeout"),
        ({"type": "http", "url": "http://x/", "method": "POST"}, "Unknown field"),
        ({"type": "command", "command": "exit", "args": "0"}, "args is a list"),
        ({"type": "http", "url": "http://user:pw@shop.example/"}, "user name or password"),
        ({"type": "http", "url": "http://exa mple.com/"}, "not a valid host"),
        ([1, 2], "JSON object"),
    ],
)
def test_it_refuses_a_bad_config(config: Any, message: str) -> None:
    with pytest.raises(health.HealthCheckError, match=message):
        health.validate_health_check(config)


def test_it_fills_in_the_defaults_and_reads_the_old_frequency_name() -> None:
    config = health.validate_health_check(
        {"type": "http", "url": "https://shop.example/health", "frequency": "daily"}
    )

    assert config == {
        "type": "http",
        "url": "https://shop.example/health",
        "expect": "status:200",
        "every": "daily",
        "timeout": 10,
    }
    assert health.every_seconds("5m") == 300
    assert health.every_seconds("hourly") == 3600


# --- CLI -----------------------------------------------------------------------------------------


def test_the_cli_sets_and_runs_a_check(
    delivery_story: Story, server: RecordingServer, no_enqueue: Any
) -> None:
    feature = live_card(delivery_story, {})
    config = json.dumps({"type": "http", "url": url_of(server), "every": "5m"})

    out = pipeline("--as", "alice", "health", str(feature.pk), "--set", config)
    assert out == f"#{feature.pk}: http {url_of(server)} expects status:200, every 5m\n"
    text = pipeline("health", str(feature.pk))
    server.behaviour.status = 500
    with no_enqueue():
        data = json.loads(pipeline("health", str(feature.pk), "--json"))

    assert text.startswith(f"#{feature.pk} healthy: HTTP 200 (expected 200) (")
    (incident,) = incidents(feature)
    assert data["ok"] is False
    assert data["detail"] == "HTTP 500 (expected 200)"
    assert data["incident"] == incident.pk
    assert feature.health_results.count() == 2


def test_the_cli_refuses_bad_input_in_one_line(delivery_story: Story) -> None:
    feature = live_card(delivery_story, {})

    with pytest.raises(CommandError, match="no health check"):
        pipeline("health", str(feature.pk))
    with pytest.raises(CommandError, match="--set needs JSON"):
        pipeline("health", str(feature.pk), "--set", "{nope")
    with pytest.raises(CommandError, match="HEALTH_CHECK_COMMANDS"):
        pipeline("health", str(feature.pk), "--set", '{"type": "command", "command": "true"}')


def test_the_cli_clears_a_check(delivery_story: Story) -> None:
    feature = live_card(delivery_story, {"type": "http", "url": "http://127.0.0.1:9/"})

    assert pipeline("health", str(feature.pk), "--clear") == f"#{feature.pk}: no health check\n"
    feature.refresh_from_db()
    assert feature.health_check == {}


# --- the card page's form --------------------------------------------------------------------


def test_a_member_sets_an_http_check_from_the_card_page(delivery_story: Story) -> None:
    feature = live_card(delivery_story, {})
    client = delivery_story.client_for(delivery_story.teammate)

    response = client.post(
        reverse("features:health", args=[feature.pk]),
        {"type": "http", "target": "https://shop.example/health", "every": "5m"},
    )

    assert response.status_code == 302
    feature.refresh_from_db()
    assert feature.health_check["url"] == "https://shop.example/health"
    page = client.get(reverse("features:detail", args=[feature.pk])).content.decode()
    assert "http https://shop.example/health expects status:200, every 5m" in page


def test_the_card_page_shows_the_check_and_its_history(
    delivery_story: Story, server: RecordingServer, no_enqueue: Any
) -> None:
    feature = live_card(delivery_story, {"type": "http", "url": url_of(server)})
    client = delivery_story.client_for(delivery_story.viewer)
    url = reverse("features:detail", args=[feature.pk])

    before = client.get(url).content.decode()
    server.behaviour.status = 500
    with no_enqueue():
        health.run_health_check(feature)
    after = " ".join(client.get(url).content.decode().split())

    assert "● not checked" in before
    assert "● failing" not in before
    assert "● failing" in after
    assert "failed</strong>: HTTP 500 (expected 200)" in after
    assert "the health check</summary>" not in after  # viewers see it, and change nothing


def test_the_form_refuses_a_command_from_a_member(delivery_story: Story, commands_on: None) -> None:
    feature = live_card(delivery_story, {})
    client = delivery_story.client_for(delivery_story.teammate)

    response = client.post(
        reverse("features:health", args=[feature.pk]),
        {"type": "command", "target": "exit", "args": "0"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 422
    assert "Only workspace owners and admins can set command checks." in response.content.decode()
    feature.refresh_from_db()
    assert feature.health_check == {}


def test_the_form_offers_commands_to_admins_only_when_allowed(
    delivery_story: Story, commands_on: None
) -> None:
    feature = live_card(delivery_story, {})
    url = reverse("features:detail", args=[feature.pk])

    owner_page = delivery_story.client_for(delivery_story.owner).get(url).content.decode()
    member_page = delivery_story.client_for(delivery_story.teammate).get(url).content.decode()

    assert 'value="command"' in owner_page
    assert 'value="command"' not in member_page


def test_viewers_and_outsiders_cannot_set_a_check(delivery_story: Story) -> None:
    feature = live_card(delivery_story, {})
    data = {"type": "http", "target": "https://shop.example/health"}
    url = reverse("features:health", args=[feature.pk])

    assert delivery_story.client_for(delivery_story.viewer).post(url, data).status_code == 403
    assert delivery_story.client_for(delivery_story.outsider).post(url, data).status_code == 404
    feature.refresh_from_db()
    assert feature.health_check == {}


# --- beat ----------------------------------------------------------------------------------------


def test_the_beat_task_sends_only_due_checks(
    delivery_story: Story, server: RecordingServer, eager: Any
) -> None:
    config = {"type": "http", "url": url_of(server), "every": "5m"}
    now = timezone.now()
    never = live_card(delivery_story, config, "Never checked")
    overdue = live_card(delivery_story, config, "Checked 6 minutes ago")
    recent = live_card(delivery_story, config, "Checked a minute ago")
    not_live = FeatureFactory.create(
        workspace=delivery_story.workspace,
        stage=delivery_story.workspace.stages.get(key="done"),
        health_check=health.validate_health_check(config),
    )
    for feature, ago in ((overdue, 6), (recent, 1)):
        HealthCheckResult.objects.create(
            feature=feature, ok=True, detail="", checked_at=now - timedelta(minutes=ago)
        )

    with eager():
        ran = tasks.run_due_health_checks()

    assert ran == 2
    counts = {f.title: f.health_results.count() for f in (never, overdue, recent, not_live)}
    assert counts == {
        "Never checked": 1,
        "Checked 6 minutes ago": 2,
        "Checked a minute ago": 1,
        not_live.title: 0,
    }


def test_the_beat_task_skips_command_checks_when_none_are_defined(
    delivery_story: Story, settings: Any, eager: Any
) -> None:
    settings.HEALTH_CHECK_COMMANDS = {"exit": [PY, "-c", "pass"]}
    live_card(delivery_story, {"type": "command", "command": "exit"})
    settings.HEALTH_CHECK_COMMANDS = {}

    with eager():
        assert tasks.run_due_health_checks() == 0
    assert not HealthCheckResult.objects.exists()


def test_the_beat_schedule_runs_the_task_every_minute(settings: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["run-due-health-checks"]

    assert entry == {"task": "features.run_due_health_checks", "schedule": 60.0}
