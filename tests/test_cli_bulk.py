"""`manage.py pipeline bulk …` and `bulk-job`: dry run, confirm with the count, progress,
owners and admins only under --as, one-line errors."""

from __future__ import annotations

import json

import pytest
from django.core.management.base import CommandError

from pipeline import bulk
from pipeline.models import BulkAction, Run
from tests.bulk_helpers import outage, run_in
from tests.cli_helpers import pipeline
from tests.test_cli_outages import cli


def test_the_dry_run_prints_the_count_and_the_newest_runs(story):
    failed = outage(story.workspace, 12)
    run_in(story.workspace, "Other", provider="openai")
    out = pipeline("bulk", "retry", "--workspace", story.workspace.slug, "--provider", "anthropic")
    lines = out.splitlines()
    assert lines[0] == "12 runs to retry (provider anthropic)"
    assert lines[1].startswith(f"  #{failed[-1].pk:<5} architecture   failed     transient")
    assert lines[-2] == "  … and 2 more"
    assert lines[-1] == "Act on them with --confirm 12."
    assert not BulkAction.objects.exists()


def test_confirming_starts_the_job_and_bulk_job_shows_its_progress(story, no_enqueue):
    failed = outage(story.workspace, 3)
    with no_enqueue():
        out = pipeline(
            "--as", "alice", "--json", "bulk", "retry", "--error-kind", "transient",
            "--confirm", "3",
        )  # fmt: skip
        job = json.loads(out)
        assert (job["status"], job["total"], job["actor"], job["source"]) == (
            "queued", 3, "alice", "cli",
        )  # fmt: skip
        bulk.process_chunk(job["id"])

    text = pipeline("bulk-job", str(job["id"]))
    assert text.splitlines()[0] == (
        f"Bulk retry #{job['id']}: succeeded, 3 of 3 (3 done, 0 skipped, 0 failed)"
    )
    retried = Run.objects.get(parent_run=failed[0])
    assert f"  #{failed[0].pk:<5} done     Retrying as run #{retried.pk}" in text
    data = json.loads(pipeline("bulk-job", str(job["id"]), "--json"))
    assert len(data["items"]) == 3


def test_a_changed_count_is_refused_in_one_line(story):
    outage(story.workspace, 2)
    with pytest.raises(CommandError) as caught:
        pipeline("bulk", "retry", "--confirm", "7")
    assert str(caught.value) == (
        "2 runs match this filter now, not the 7 you confirmed: check the new count and "
        "confirm again."
    )
    assert not BulkAction.objects.exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("bulk", "purge"), "Choose an action: retry, cancel, rescue."),
        (("bulk", "retry", "--status", "queued"), "--status: Retry acts on failed or cancelled"),
        (("bulk", "cancel", "--stage", "moon"), "--stage: Unknown stage 'moon'; choose one of:"),
        (("bulk", "retry", "--created-after", "noon"), "--created-after: created_after: a date"),
        (("bulk", "retry", "--confirm", "0"), "No runs match this filter for retry"),
        (("bulk-job", "999999"), "No bulk action #999999."),
    ],
)
def test_bad_input_is_one_line_that_says_what_to_fix(story, args, says):
    with pytest.raises(CommandError) as caught:
        pipeline(*args)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not BulkAction.objects.exists()


@pytest.mark.parametrize("who", ["bob", "vera"])
def test_members_and_viewers_are_refused(story, who):
    outage(story.workspace, 1)
    with pytest.raises(CommandError) as caught:
        pipeline("--as", who, "bulk", "retry", "--confirm", "1")
    assert str(caught.value) == f"{who}: Only workspace owners and admins can do this."
    with pytest.raises(CommandError, match="No workspace 'alices-team'"):
        pipeline("--as", "charlie", "bulk", "retry", "--workspace", "alices-team")
    assert not BulkAction.objects.exists()


def test_a_job_is_stopped_from_the_shell(story, no_enqueue):
    outage(story.workspace, 2)
    with no_enqueue():
        job = json.loads(pipeline("--json", "bulk", "retry", "--confirm", "2"))
    assert pipeline("bulk-job", str(job["id"]), "--stop").startswith(
        f"Bulk retry #{job['id']}: cancelled, 0 of 2"
    )
    with pytest.raises(CommandError, match=f"Bulk retry #{job['id']} is cancelled."):
        pipeline("bulk-job", str(job["id"]), "--stop")


@pytest.mark.django_db(transaction=True)
def test_from_a_shell_an_error_is_one_line_and_a_non_zero_exit(story):
    result = cli("bulk", "retry", "--workspace", story.workspace.slug, "--provider", "skynet")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "CommandError: --provider: Unknown provider 'skynet'; choose one of: anthropic, cli, "
        "offline, openai."
    ]
