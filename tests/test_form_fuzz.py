"""Every form and page input, fuzzed: whatever a browser (or anyone with curl) sends —
malformed numbers, NUL and control characters, huge or deeply nested values, unknown
choices — the answer is never a 5xx.

The table below names each page endpoint with the fields its forms send; a test checks that
it covers every URL of the pages (so a new form must be added here). Hypothesis generates the
values (bounded, derandomized, so a failure is reproducible).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from features.members import create_invitation
from features.models import Artifact, Feature, Membership
from pipeline import engine
from pipeline.models import Run
from skills.models import Skill
from tests.api_helpers import reset_launch_limits
from tests.conftest import Story
from tests.engine_helpers import card

pytestmark = pytest.mark.django_db

# Values people and scripts really send, and the ones that used to crash something.
NASTY = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "1e3",
        "²",
        "٣",
        "9" * 30,
        "NaN",
        "true",
        "\x00",
        "a\x00b",
        "\u202e",
        "<script>alert(1)</script>",
        "[" * 3000 + "]" * 3000,
        '{"a": ' * 50 + "1" + "}" * 50,
        "x" * 70_000,
        "../../etc/passwd",
        "fully_auto",
        "http://127.0.0.1:1/",
        "remove-step:0",
        "up:99999999999999999999",
    ]
)
VALUE = st.one_of(
    NASTY,
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    st.integers(-(2**70), 2**70).map(str),
)


# A few per form in `make test`; `make fuzz` sets RUNWAY_FUZZ_EXAMPLES higher.
FORM_EXAMPLES = int(os.environ.get("RUNWAY_FUZZ_EXAMPLES", "8"))


@dataclass
class Endpoint:
    url: Callable[[dict[str, Any]], str]
    fields: tuple[str, ...]
    method: str = "post"


def _rows(prefix: str, names: tuple[str, ...], count: int = 2) -> tuple[str, ...]:
    return tuple(f"{prefix}-{i}-{n}" for i in range(count) for n in names)


STEP: tuple[str, ...] = ("skill", "skill_id", "params", "input_mapping", "output_mapping")
STEP += ("provider", "model", "timeout_seconds", "retry_count")
GATE = ("name", "type", "config", "required", "failure_message")
BULK_FILTER: tuple[str, ...] = ("status", "stage", "error_kind", "provider", "created_after")
BULK_FILTER += ("created_before", "finished_after", "finished_before")

ENDPOINTS: dict[str, Endpoint] = {
    "features:home": Endpoint(lambda o: "/", (), "get"),
    "features:board": Endpoint(
        lambda o: f"/w/{o['slug']}/",
        ("q", "kind", "status", "stage", "parent", "blocked", "failed", "archived", "group"),
        "get",
    ),
    "features:column_more": Endpoint(
        lambda o: f"/w/{o['slug']}/columns/{o['stage']}/more",
        ("offset", "q", "kind", "status", "stage", "parent", "archived"),
        "get",
    ),
    "features:palette": Endpoint(lambda o: f"/w/{o['slug']}/palette", ("q",), "get"),
    "features:archive": Endpoint(lambda o: f"/features/{o['pk']}/archive", ()),
    "features:unarchive": Endpoint(lambda o: f"/features/{o['pk']}/unarchive", ()),
    "features:worker_banner": Endpoint(lambda o: f"/w/{o['slug']}/worker-banner", (), "get"),
    "features:new": Endpoint(
        lambda o: f"/w/{o['slug']}/features/new", ("title", "description", "kind", "launch")
    ),
    "features:settings": Endpoint(
        lambda o: f"/w/{o['slug']}/settings",
        (
            "automation_mode",
            "stop_stage",
            "max_concurrent_runs",
            "monthly_budget_usd",
            "default_provider",
            "default_model",
        ),
    ),
    "features:kind_stages": Endpoint(
        lambda o: f"/w/{o['slug']}/settings/kinds",
        tuple(f"kind-{kind}" for kind in Feature.Kind.values),
    ),
    "features:stories": Endpoint(
        lambda o: f"/w/{o['slug']}/stories/", ("status", "kind", "epic"), "get"
    ),
    "features:stories_kpis": Endpoint(
        lambda o: f"/w/{o['slug']}/stories/kpis", ("status", "kind", "epic"), "get"
    ),
    "features:subtasks": Endpoint(
        lambda o: f"/w/{o['slug']}/subtasks/", ("status", "kind", "epic"), "get"
    ),
    "features:batch": Endpoint(lambda o: f"/w/{o['slug']}/batches/1/", ("watching",), "get"),
    "features:batch_stop": Endpoint(lambda o: f"/w/{o['slug']}/batches/1/stop", ()),
    "features:batch_retry": Endpoint(lambda o: f"/w/{o['slug']}/batches/1/retry", ()),
    "features:epic_tree": Endpoint(lambda o: f"/features/{o['pk']}/tree", (), "get"),
    "features:launch_tree": Endpoint(lambda o: f"/features/{o['pk']}/tree/launch", ()),
    "features:generate_subtasks": Endpoint(
        lambda o: f"/features/{o['pk']}/subtasks/generate", ("scope", "story")
    ),
    "features:detail": Endpoint(lambda o: f"/features/{o['pk']}/", (), "get"),
    "features:move": Endpoint(lambda o: f"/features/{o['pk']}/move", ("stage", "position")),
    "features:edit": Endpoint(
        lambda o: f"/features/{o['pk']}/edit", ("title", "description", "version")
    ),
    "features:health": Endpoint(
        lambda o: f"/features/{o['pk']}/health", ("type", "target", "args", "expect", "every")
    ),
    "features:artifact_diff": Endpoint(
        lambda o: f"/features/{o['done']}/artifacts/{o['artifact']}/diff", ("a", "b"), "get"
    ),
    "features:rerun": Endpoint(
        lambda o: f"/features/{o['done']}/runs/{o['run']}/rerun",
        ("feedback", "description", "document", "document_text"),
    ),
    "features:action": Endpoint(lambda o: f"/features/{o['pk']}/reject", ("reason",)),
    "pipeline:healthz": Endpoint(lambda o: "/healthz", (), "get"),
    "pipeline:runs": Endpoint(
        lambda o: f"/w/{o['slug']}/runs/", ("status", "stage", "page"), "get"
    ),
    "pipeline:runs_status": Endpoint(lambda o: f"/w/{o['slug']}/runs/status", (), "get"),
    "pipeline:rescue": Endpoint(lambda o: f"/w/{o['slug']}/runs/{o['run']}/rescue", ()),
    "pipeline:cancel": Endpoint(lambda o: f"/w/{o['slug']}/runs/{o['run']}/cancel", ()),
    "pipeline:bulk_preview": Endpoint(
        lambda o: f"/w/{o['slug']}/runs/bulk/preview", ("action", *BULK_FILTER), "get"
    ),
    "pipeline:bulk_start": Endpoint(
        lambda o: f"/w/{o['slug']}/runs/bulk/", ("action", "expected_count", *BULK_FILTER)
    ),
    "pipeline:bulk_job": Endpoint(lambda o: f"/w/{o['slug']}/runs/bulk/1", (), "get"),
    "pipeline:bulk_cancel": Endpoint(lambda o: f"/w/{o['slug']}/runs/bulk/1/cancel", ()),
    "skills:catalog": Endpoint(lambda o: f"/w/{o['slug']}/skills/", (), "get"),
    "skills:import": Endpoint(lambda o: f"/w/{o['slug']}/skills/import", ("bundle",)),
    "skills:export": Endpoint(lambda o: f"/w/{o['slug']}/skills/{o['skill']}/export", (), "get"),
    "skills:vet": Endpoint(lambda o: f"/w/{o['slug']}/skills/{o['skill']}/vet", ()),
    "skills:recipe": Endpoint(
        lambda o: f"/w/{o['slug']}/recipes/architecture/",
        (
            "op",
            "automation",
            "on_fail",
            "provider",
            "model",
            "enabled",
            "step_count",
            "gate_count",
            *_rows("step", STEP),
            *_rows("gate", GATE),
        ),
    ),
    "skills:edit_prompt": Endpoint(
        lambda o: f"/w/{o['slug']}/recipes/architecture/prompts/{o['skill']}", ("prompt",)
    ),
    "login": Endpoint(lambda o: "/login/", ("username", "password", "next")),
    "logout": Endpoint(lambda o: "/logout/", ()),
    "tokens": Endpoint(lambda o: "/profile/tokens", ("name",)),
    "revoke_token": Endpoint(lambda o: "/profile/tokens/1/revoke", ()),
    "notifications:settings_home": Endpoint(lambda o: "/notifications/", (), "get"),
    "notifications:page": Endpoint(
        lambda o: f"/w/{o['slug']}/notifications/", ("url", "format", "events")
    ),
    "notifications:save_settings": Endpoint(
        lambda o: f"/w/{o['slug']}/notifications/email", ("mode", "events")
    ),
    "notifications:webhook": Endpoint(lambda o: f"/w/{o['slug']}/webhooks/1/", ("page",), "get"),
    "notifications:resume": Endpoint(lambda o: f"/w/{o['slug']}/webhooks/1/resume", ()),
    "notifications:delete": Endpoint(lambda o: f"/w/{o['slug']}/webhooks/1/delete", ()),
    "notifications:resend": Endpoint(
        lambda o: f"/w/{o['slug']}/webhooks/1/deliveries/1/resend", ()
    ),
    "notifications:decide": Endpoint(lambda o: "/decide/eyJyIjoxfQ:1xY82a:abc", ("reason",)),
    "people:new_workspace": Endpoint(lambda o: "/workspaces/new", ("name", "template")),
    "people:members": Endpoint(lambda o: f"/w/{o['slug']}/members/", (), "get"),
    "people:invite": Endpoint(lambda o: f"/w/{o['slug']}/members/invite", ("role", "days")),
    "people:change_role": Endpoint(
        lambda o: f"/w/{o['slug']}/members/{o['member']}/role", ("role",)
    ),
    "people:remove": Endpoint(lambda o: f"/w/{o['slug']}/members/{o['member']}/remove", ()),
    "people:revoke_invitation": Endpoint(
        lambda o: f"/w/{o['slug']}/invitations/{o['invitation']}/revoke", ()
    ),
    "people:accept": Endpoint(lambda o: f"/invitations/{o['token']}", ()),
    "people:audit": Endpoint(
        lambda o: f"/w/{o['slug']}/audit/",
        ("action", "actor", "target", "since", "until", "page"),
        "get",
    ),
    "people:audit_csv": Endpoint(
        lambda o: f"/w/{o['slug']}/audit.csv",
        ("action", "actor", "target", "since", "until"),
        "get",
    ),
}


def _names(patterns: list[Any], namespace: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace in ("admin", "api"):
                continue  # the admin is Django's; the API has its own fuzzing (schemathesis)
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}{pattern.name}")
    return names


def test_the_table_covers_every_page_url() -> None:
    assert _names(get_resolver().url_patterns) == set(ENDPOINTS)


@pytest.fixture
def objects(story: Story, eager: Any) -> dict[str, Any]:
    reset_launch_limits()
    done = card(story.workspace, "Finished")
    with eager():
        engine.launch_pipeline(done, story.owner)
    artifact = Artifact.objects.filter(feature=done).order_by("id").first()
    run = Run.objects.filter(feature=done).order_by("id").first()
    skill = Skill.objects.filter(workspace=None).order_by("id").first()
    assert artifact is not None
    assert run is not None
    assert skill is not None
    invitation, token = create_invitation(story.workspace, role="member", by=story.owner)
    return {
        "slug": story.workspace.slug,
        "pk": card(story.workspace, "Target").pk,
        "stage": story.workspace.stages.order_by("id").first().pk,  # type: ignore[union-attr]
        "done": done.pk,
        "artifact": artifact.name,
        "run": run.pk,
        "skill": skill.pk,
        "owner": story.owner,
        "member": Membership.objects.get(workspace=story.workspace, user=story.teammate).pk,
        "invitation": invitation.pk,
        "token": token,
    }


def _send(endpoint: Endpoint, objects: dict[str, Any], values: dict[str, str]) -> int:
    client = Client(raise_request_exception=False)
    client.force_login(objects["owner"])
    url = endpoint.url(objects)
    if endpoint.method == "get":
        return client.get(url, values).status_code
    data: dict[str, Any] = dict(values)
    if "bundle" in data:
        data["bundle"] = SimpleUploadedFile("b.zip", data["bundle"].encode("utf-8", "replace"))
    return client.post(url, data, HTTP_HX_REQUEST="true").status_code


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_no_input_makes_a_page_fail(name: str, objects: dict[str, Any]) -> None:
    endpoint = ENDPOINTS[name]

    @given(
        st.fixed_dictionaries(
            {},
            optional={field: VALUE for field in endpoint.fields} | {"unexpected": VALUE},
        )
    )
    @hypothesis_settings(
        max_examples=FORM_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def fuzz(values: dict[str, str]) -> None:
        status = _send(endpoint, objects, values)
        # /healthz says 503 when no worker runs (none does here): its answer, not a failure.
        assert status < 500 or (name, status) == ("pipeline:healthz", 503), (name, values)

    fuzz()
    assert Feature.objects.filter(pk=objects["pk"]).exists() or name == "features:action"


@pytest.mark.parametrize(
    "path",
    [
        "/features/{done}/artifacts/a%00b/diff",
        "/w/{slug}/runs/?stage=%00",
        "/w/{slug}/runs/?page=%00",
        "/invitations/a%00b",
        "/w/{slug}/audit/?target=%00",
        "/features/{done}/artifacts/{artifact}/diff?a=1%002",
    ],
)
def test_a_nul_in_a_url_is_a_400(path: str, objects: dict[str, Any]) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(objects["owner"])

    response = client.get(path.format(**objects))

    assert response.status_code == 400
    assert b"NUL" in response.content
