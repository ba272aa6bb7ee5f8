"""`manage.py pipeline ...`: the board and its pipelines from a shell or a script.

Every subcommand calls the same services as the board and the API. Errors are one line on
stderr and a non-zero exit, whatever is down (`--traceback` shows the details); `--json` prints
machine-readable output on stdout. A run written while the broker or every worker is down stays
written: the command succeeds and says on stderr, in one line, when the run will start.
`--as` and `--json` go before or after the action.

Without `--as` the command is the server's operator, who sees every workspace. With
`--as USER` (or RUNWAY_CLI_USER) it is that person, with the web's rules (features.access):
a workspace they are not in does not exist for them, viewers only read, and the same input
limits apply.
"""

from __future__ import annotations

import json
import logging
import os
from argparse import SUPPRESS, ArgumentParser
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError
from django.db.models import Count
from django.http import Http404

from audit.context import acting_from
from config.jsonlimits import loads_limited
from features import access
from features.actions import NOTE_MAX, FeatureError, check_text
from features.models import Feature, Stage, Workspace
from pipeline import bulk, engine, tree_queries
from pipeline.health import check_broker
from pipeline.models import Batch, BulkAction, Run, WorkerHeartbeat


def feature_dict(feature: Feature, *, children: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": feature.pk,
        "title": feature.title,
        "kind": feature.kind,
        "workspace": feature.workspace.slug,
        "stage": feature.stage.key,
        "status": feature.status,
        "status_note": feature.status_note,
        "parent": feature.parent_id,
        "position": feature.position,
        "description": feature.description,
    }
    if children:
        data["children"] = [
            {"id": c.pk, "title": c.title, "kind": c.kind, "stage": c.stage.key, "status": c.status}
            for c in feature.children.select_related("stage").order_by("id")
        ]
    return data


def run_dict(run: Run) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": run.pk,
        "stage": run.stage.key,
        "status": run.status,
        "decision": run.decision,
        "attempt": run.attempt,
        "parent_run": run.parent_run_id,
        "pipeline_next": run.pipeline_next,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "duration_seconds": run.duration.total_seconds() if run.duration else None,
        "error_kind": run.error_kind,
        "error_message": run.error_message,
        "provider": run.provider,
        "model": run.model,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "cache_read_tokens": run.cache_read_tokens,
        "cache_write_tokens": run.cache_write_tokens,
        # USD, or null when unknown (a call of the run reported no token usage).
        "cost_usd": None if run.cost_usd is None else float(run.cost_usd),
    }


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def pending_start_note(run: Run) -> str | None:
    """One line on when a queued run will start, if not at once (broker or workers down)."""
    if not Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).exists():
        return None
    broker = check_broker()
    if not broker["ok"]:
        return (
            f"Run #{run.pk} is queued; it starts when a worker can be reached "
            f"(the broker does not answer: {first_line(Exception(broker['error']))})."
        )
    if not WorkerHeartbeat.alive().exists():
        return (
            f"Run #{run.pk} is queued; no worker is running: it starts when one connects "
            "(make run, or celery -A config worker)."
        )
    return None


class Command(BaseCommand):
    help = "Create, move, launch, stop and inspect cards and their pipelines."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--as", dest="as_user", help="Username recorded as the actor.")
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        create = sub.add_parser("create", help="Create a card; prints its id.")
        create.add_argument("title")
        create.add_argument("--description", default="")
        create.add_argument("--parent", type=int)
        create.add_argument("--kind", default=Feature.Kind.FEATURE, choices=Feature.Kind.values)
        create.add_argument("--stage", help="Stage key (default: the board's first stage).")
        create.add_argument("--workspace", help="Workspace slug (default: $RUNWAY_WORKSPACE).")
        create.add_argument("--launch", action="store_true", help="Start its pipeline too.")

        for name, text in (
            ("launch", "Start the card's pipeline (or resume it from the failed stage)."),
            ("stop", "Stop the card's pipeline."),
            ("retry", "Retry the card's last failed run."),
        ):
            action = sub.add_parser(name, help=text)
            action.add_argument("id", type=int)
            if name == "launch":
                action.add_argument(
                    "--tree",
                    action="store_true",
                    help="An epic's whole tree: its stories, then their subtasks, in order.",
                )

        for name, text in (
            ("start", "Start the card's run that waits for approval."),
            ("accept", "Accept the result that waits for a decision; the pipeline goes on."),
            ("reject", "Reject the result that waits for a decision; the pipeline stops."),
        ):
            decision = sub.add_parser(name, help=text)
            decision.add_argument("id", type=int)
            if name == "reject":
                decision.add_argument("--reason", default="", help="Why; shown on the card.")

        tree = sub.add_parser("tree", help="An epic's stories and subtasks, with counts.")
        tree.add_argument("id", type=int)

        stories = sub.add_parser("stories", help="Every epic's stories, with counts.")
        stories.add_argument("--workspace")
        stories.add_argument("--status", choices=list(tree_queries.STATES))
        stories.add_argument("--kind", choices=list(tree_queries.KINDS))

        subtasks = sub.add_parser(
            "subtasks", help="Generate subtasks for all of an epic's stories (or some)."
        )
        subtasks.add_argument("id", type=int, help="The epic.")
        subtasks.add_argument(
            "--story", type=int, action="append", help="Only this story (repeatable)."
        )

        batch = sub.add_parser("batch", help="A batch's progress; or stop or retry it.")
        batch.add_argument("id", type=int)
        verb = batch.add_mutually_exclusive_group()
        verb.add_argument("--stop", action="store_true")
        verb.add_argument("--retry", action="store_true")

        move = sub.add_parser("move", help="Move a card to a stage.")
        move.add_argument("id", type=int)
        move.add_argument("stage")
        move.add_argument("--note", default="")

        show = sub.add_parser("show", help="Show one card.")
        show.add_argument("id", type=int)
        show.add_argument("--children", action="store_true")

        listing = sub.add_parser("list", help="List cards.")
        listing.add_argument("--stage")
        listing.add_argument("--parent", type=int)
        listing.add_argument("--kind", choices=Feature.Kind.values)
        listing.add_argument("--workspace")

        runs = sub.add_parser("runs", help="The card's run chain.")
        runs.add_argument("id", type=int)

        board = sub.add_parser("board", help="Columns with their counts.")
        board.add_argument("--workspace")

        health = sub.add_parser("health", help="Run a card's health check now, or set it.")
        health.add_argument("id", type=int)
        health.add_argument("--set", dest="config", help='JSON, e.g. \'{"type": "http", ...}\'.')
        health.add_argument("--clear", action="store_true", help="Remove the card's check.")

        bulk_parser = sub.add_parser(
            "bulk",
            help="Retry, cancel or rescue every run matching a filter: a dry run (count and "
            "sample) unless --confirm gives that count.",
        )
        bulk_parser.add_argument("bulk_action", metavar="retry|cancel|rescue")
        bulk_parser.add_argument("--workspace")
        for name in bulk.FIELDS:
            bulk_parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default="")
        bulk_parser.add_argument(
            "--confirm", type=int, metavar="COUNT", help="Act, if COUNT runs still match."
        )

        bulk_job = sub.add_parser("bulk-job", help="A bulk action's progress; or stop it.")
        bulk_job.add_argument("id", type=int)
        bulk_job.add_argument("--stop", action="store_true")

        # Global options after the action too: SUPPRESS keeps a value given before it.
        for action in sub.choices.values():
            action.add_argument("--as", dest="as_user", default=SUPPRESS, help=SUPPRESS)
            action.add_argument("--json", action="store_true", default=SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        # From a shell, the outcome is reported here, in one line; the warnings of a broker or
        # database outage (one per event not sent, some from the event publisher's thread after
        # this returns) are for the services' logs, so they stay off until the process exits.
        # -v 2 shows them. call_command (scripts, tests) keeps logging as it was.
        from_shell = getattr(self, "_called_from_command_line", False)
        if from_shell and options["verbosity"] < 2:
            logging.disable(logging.WARNING)
        self.queued: Run | None = None
        try:
            self.actor = self._actor(options.get("as_user"))
            with acting_from("cli"):  # audit entries say the CLI did it
                getattr(self, f"do_{options['action'].replace('-', '_')}")(options)
        except CommandError:
            raise
        except (FeatureError, engine.EngineError) as exc:
            raise CommandError(str(exc)) from exc
        except PermissionDenied as exc:
            raise CommandError(f"{getattr(self, 'actor', None) or 'operator'}: {exc}") from exc
        except DatabaseError as exc:
            if options.get("traceback"):
                raise
            raise CommandError(
                f"The database cannot be reached or refused the change ({first_line(exc)}): "
                "nothing was changed. Check DATABASE_URL and that the database is running."
            ) from exc
        except Exception as exc:
            if options.get("traceback"):
                raise
            raise CommandError(f"{type(exc).__name__}: {first_line(exc)}") from exc
        if self.queued is not None and (note := pending_start_note(self.queued)):
            self.stderr.write(note)

    # --- lookups ----------------------------------------------------------------------------

    def _actor(self, username: str | None) -> User | None:
        username = username or os.environ.get("RUNWAY_CLI_USER")
        if not username:
            return None
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        return user

    def _workspace(self, slug: str | None, *, write: bool = False) -> Workspace:
        slug = slug or os.environ.get("RUNWAY_WORKSPACE")
        visible = (
            Workspace.objects.all() if self.actor is None else access.workspaces_for(self.actor)
        )
        if slug:
            workspace = visible.filter(slug=slug).first()
            if workspace is None:
                known = ", ".join(visible.values_list("slug", flat=True)) or "none"
                raise CommandError(f"No workspace {slug!r} (known: {known}).")
        else:
            workspace = visible.order_by("id").first()
            if workspace is None:
                raise CommandError("No workspace yet: run `manage.py seed_demo` or create one.")
        if self.actor is not None:
            access.get_workspace(self.actor, workspace.slug, write=write)  # the role
        return workspace

    def _feature(self, pk: int, *, write: bool = False) -> Feature:
        if self.actor is not None:
            try:
                return access.get_feature(self.actor, pk, write=write)[0]
            except Http404:
                raise CommandError(f"No card #{pk}.") from None
        feature = Feature.objects.select_related("workspace", "stage").filter(pk=pk).first()
        if feature is None:
            raise CommandError(f"No card #{pk}.")
        return feature

    def _stage(self, workspace: Workspace, key: str) -> Stage:
        stage = workspace.stages.filter(key=key).first()
        if stage is None:
            keys = ", ".join(workspace.stages.values_list("key", flat=True))
            raise CommandError(f"No stage {key!r} in {workspace.slug} (stages: {keys}).")
        return stage

    def _emit(self, options: dict[str, Any], data: Any, text: str) -> None:
        self.stdout.write(
            json.dumps(data, indent=2, cls=DjangoJSONEncoder) if options.get("json") else text
        )

    # --- subcommands --------------------------------------------------------------------------

    def do_create(self, options: dict[str, Any]) -> None:
        parent = self._feature(options["parent"]) if options["parent"] else None
        workspace = (
            self._workspace(parent.workspace.slug, write=True)
            if parent
            else self._workspace(options["workspace"], write=True)
        )
        if parent and options["workspace"] and options["workspace"] != workspace.slug:
            raise CommandError(f"Card #{parent.pk} belongs to workspace {workspace.slug}.")
        stage = self._stage(workspace, options["stage"]) if options["stage"] else None
        created = engine.create_feature(
            workspace,
            title=options["title"],
            description=options["description"],
            kind=options["kind"],
            parent=parent,
            stage=stage,
            user=self.actor,
            launch=options["launch"],
        )
        feature = created.feature
        data = feature_dict(feature)
        if created.launched is not None:
            data["run_id"] = created.launched.run.pk
            data["pipeline"] = created.launched.pipeline
            self.queued = created.launched.run
        self._emit(options, data, str(feature.pk))

    def do_launch(self, options: dict[str, Any]) -> None:
        if options.get("tree"):
            started = engine.launch_tree(self._feature(options["id"], write=True), self.actor)
            self._emit_started(options, started, "Launched the whole tree")
            return
        launched = engine.launch_pipeline(self._feature(options["id"], write=True), self.actor)
        self.queued = launched.run
        verb = "Resumed" if launched.resumed else "Launched"
        self._emit(
            options,
            {"run_id": launched.run.pk, "pipeline": launched.pipeline, "resumed": launched.resumed},
            f"{verb} run #{launched.run.pk}: {' → '.join(launched.pipeline)}",
        )

    def do_stop(self, options: dict[str, Any]) -> None:
        stopped = engine.stop_pipeline(self._feature(options["id"], write=True), self.actor)
        self._emit(options, {"stopped": stopped}, f"Stopped {stopped} run(s).")

    def do_retry(self, options: dict[str, Any]) -> None:
        feature = self._feature(options["id"], write=True)
        last = feature.runs.order_by("-created_at", "-id").first()
        if last is None or last.status not in (Run.Status.FAILED, Run.Status.CANCELLED):
            raise CommandError(f"Card #{feature.pk} has no failed run to retry.")
        run = engine.retry_run(last, self.actor)
        self.queued = run
        self._emit(
            options,
            {"run_id": run.pk, "retry_of": last.pk},
            f"Retrying run #{last.pk} as run #{run.pk}",
        )

    def _waiting_run(self, feature: Feature, what: str) -> Run:
        # The card's newest run is the one a person decides on: an older one is history.
        last = feature.runs.order_by("-created_at", "-id").first()
        if last is None:
            raise CommandError(f"Card #{feature.pk} has no run {what}.")
        return last

    def do_start(self, options: dict[str, Any]) -> None:
        feature = self._feature(options["id"], write=True)
        run = engine.start_run(self._waiting_run(feature, "waiting for approval"), self.actor)
        self.queued = run
        self._emit(options, {"run_id": run.pk}, f"Started run #{run.pk}")

    def do_accept(self, options: dict[str, Any]) -> None:
        feature = self._feature(options["id"], write=True)
        run = self._waiting_run(feature, "waiting for a decision")
        next_run = engine.accept_run(run, self.actor)
        self.queued = next_run
        data = {"run_id": run.pk, "next_run": next_run.pk if next_run else None}
        then = f"; run #{next_run.pk} goes on" if next_run else ""
        self._emit(options, data, f"Accepted run #{run.pk}{then}")

    def do_reject(self, options: dict[str, Any]) -> None:
        feature = self._feature(options["id"], write=True)
        reason = check_text(options["reason"], "The reason", NOTE_MAX)
        run = self._waiting_run(feature, "waiting for a decision")
        engine.reject_run(run, self.actor, reason)
        self._emit(options, {"run_id": run.pk}, f"Rejected run #{run.pk}")

    def do_move(self, options: dict[str, Any]) -> None:
        feature = self._feature(options["id"], write=True)
        stage = self._stage(feature.workspace, options["stage"])
        feature = engine.move_feature(feature, stage, user=self.actor, note=options["note"])
        self.queued = feature.runs.filter(status=Run.Status.QUEUED).first()
        self._emit(options, feature_dict(feature), f"#{feature.pk} is now in {stage.name}")

    def do_show(self, options: dict[str, Any]) -> None:
        feature = self._feature(options["id"])
        data = feature_dict(feature, children=options["children"])
        lines = [
            f"#{feature.pk} {feature.title}",
            f"  {feature.get_kind_display()} · {feature.stage.name} · "
            f"{feature.get_status_display()}"
            + (f" · parent #{feature.parent_id}" if feature.parent_id else ""),
        ]
        if feature.status_note:
            lines.append(f"  {feature.status_note}")
        for child in data.get("children", []):
            lines.append(
                f"  └ #{child['id']} [{child['kind']}] {child['title']} ({child['stage']})"
            )
        self._emit(options, data, "\n".join(lines))

    def do_list(self, options: dict[str, Any]) -> None:
        cards = Feature.objects.select_related("workspace", "stage").order_by(
            "stage__board", "stage__position", "position", "id"
        )
        if options["parent"]:
            cards = cards.filter(parent=self._feature(options["parent"]))
        else:
            cards = cards.filter(workspace=self._workspace(options["workspace"]))
        if options["stage"]:
            cards = cards.filter(stage__key=options["stage"])
        if options["kind"]:
            cards = cards.filter(kind=options["kind"])
        rows = list(cards)
        text = "\n".join(
            f"#{c.pk:<5} {c.stage.key:<14} {c.kind:<9} {c.status:<18} {c.title}" for c in rows
        )
        self._emit(options, [feature_dict(c) for c in rows], text or "No cards.")

    def do_runs(self, options: dict[str, Any]) -> None:
        feature = self._feature(options["id"])
        runs = list(feature.runs.select_related("stage").order_by("created_at", "id"))
        text = "\n".join(
            f"#{r.pk:<5} {r.stage.key:<14} {r.status:<17} attempt {r.attempt}"
            + (f"  ← #{r.parent_run_id}" if r.parent_run_id else "")
            + (f"  {r.duration.total_seconds():.2f}s" if r.duration else "")
            + ("  cost unknown" if r.cost_usd is None else "")
            + (f"  {r.error_message}" if r.error_message else "")
            for r in runs
        )
        self._emit(options, [run_dict(r) for r in runs], text or "No runs.")

    def do_health(self, options: dict[str, Any]) -> None:
        from features import health

        feature = self._feature(options["id"], write=True)
        if options["config"] is not None or options["clear"]:
            try:
                config = {} if options["clear"] else loads_limited(options["config"])
            except ValueError as exc:
                raise CommandError(f"--set needs JSON: {exc}") from exc
            feature = health.do_set_health_check(feature, config, self.actor)
            text = f"#{feature.pk}: {health.describe(feature.health_check)}"
            self._emit(options, {"id": feature.pk, "health_check": feature.health_check}, text)
            return
        result = health.run_health_check(feature)
        incident = health.open_incident(feature)
        data = {
            "id": feature.pk,
            "ok": result.ok,
            "detail": result.detail,
            "duration_ms": result.duration_ms,
            "checked_at": result.checked_at.isoformat(),
            "incident": incident.pk if incident else None,
        }
        text = f"#{feature.pk} {'healthy' if result.ok else 'FAILING'}: {result.detail}"
        text += f" ({result.duration_ms} ms)"
        if incident is not None:
            text += f"; open incident #{incident.pk}"
        self._emit(options, data, text)

    def do_board(self, options: dict[str, Any]) -> None:
        workspace = self._workspace(options["workspace"])
        stages = workspace.stages.annotate(cards=Count("features")).order_by("board", "position")
        data = [
            {"board": s.board, "stage": s.key, "name": s.name, "count": s.cards} for s in stages
        ]
        lines = [f"{workspace.name} ({workspace.slug})"]
        board = None
        for row in data:
            if row["board"] != board:
                board = row["board"]
                lines.append(f"  {'Feature board' if board == 'feature' else 'Work board'}:")
            lines.append(f"    {str(row['name']).upper()} ({row['count']})")
        self._emit(options, data, "\n".join(lines))

    # --- the tree and its batches -------------------------------------------------------------

    def _emit_started(self, options: dict[str, Any], started: engine.Started, verb: str) -> None:
        runs = len(started.runs)
        lines = [f"{verb}: batch #{started.batch.pk}, {runs} card{'s' if runs != 1 else ''}"]
        lines += [f"  skipped #{card.pk} {card.title}: {why}" for card, why in started.skipped]
        data = {
            "batch": started.batch.pk,
            "runs": [r.pk for r in started.runs],
            "skipped": [{"id": c.pk, "title": c.title, "reason": w} for c, w in started.skipped],
        }
        self._emit(options, data, "\n".join(lines))

    def _batch(self, pk: int, *, write: bool = False) -> Batch:
        """The batch, if `--as`'s person may see it (or act on it): its workspace's rules."""
        batch = Batch.objects.select_related("root", "workspace").filter(pk=pk).first()
        if batch is None:
            raise CommandError(f"No batch #{pk}.")
        if self.actor is not None:
            try:
                access.get_workspace(self.actor, batch.workspace.slug, write=write)
            except Http404:
                raise CommandError(f"No batch #{pk}.") from None
        return batch

    def do_subtasks(self, options: dict[str, Any]) -> None:
        started = engine.generate_subtasks(
            self._feature(options["id"], write=True), self.actor, story_ids=options["story"]
        )
        self._emit_started(options, started, "Generating subtasks")

    def do_batch(self, options: dict[str, Any]) -> None:
        batch = self._batch(options["id"], write=options["stop"] or options["retry"])
        if options["stop"]:
            stopped = engine.stop_batch(batch, self.actor)
            self._emit(options, {"stopped": stopped}, f"Stopped {stopped} run(s).")
            return
        if options["retry"]:
            runs = engine.retry_batch(batch, self.actor)
            text = f"Retrying {len(runs)} card(s) of batch #{batch.pk}"
            self._emit(options, {"runs": [r.pk for r in runs]}, text)
            return
        progress = engine.progress(self._batch(batch.pk))
        lines = [progress_line(progress)]
        lines += [
            f"  {c.state:<8} #{c.pk} {c.title} ({c.stage}{', ' + c.step if c.step else ''})"
            for c in progress.cards
        ]
        self._emit(options, progress.as_dict(), "\n".join(lines))

    def do_tree(self, options: dict[str, Any]) -> None:
        epic = self._feature(options["id"])
        if epic.kind != Feature.Kind.EPIC:
            raise CommandError(f"#{epic.pk} is a {epic.get_kind_display().lower()}, not an epic.")
        group = tree_queries.build_tree(epic.workspace, epic=epic).groups[0]
        self._emit(options, group.as_dict(), "\n".join(group_lines(group)))

    def do_stories(self, options: dict[str, Any]) -> None:
        workspace = self._workspace(options["workspace"])
        tree = tree_queries.build_tree(
            workspace, status=options["status"] or "", kind=options["kind"] or ""
        )
        lines = [f"{workspace.name}: {counts_line(tree.counts)}"]
        for group in tree.groups:
            lines += group_lines(group, subtasks=bool(options["status"] or options["kind"]))
        self._emit(options, tree.as_dict(), "\n".join(lines))

    # --- bulk actions -------------------------------------------------------------------------

    def _admin_workspace(self, slug: str | None) -> Workspace:
        workspace = self._workspace(slug)
        if self.actor is not None:
            access.get_workspace(self.actor, workspace.slug, admin=True)  # owners and admins
        return workspace

    def do_bulk(self, options: dict[str, Any]) -> None:
        workspace = self._admin_workspace(options["workspace"])
        raw = {name: options[name] for name in bulk.FIELDS}
        try:
            action = bulk.parse_action(options["bulk_action"])
            run_filter = bulk.parse_filter(raw, workspace, action)
            if options["confirm"] is None:
                self._emit_preview(options, bulk.preview(workspace, action, run_filter))
                return
            job = bulk.start_bulk_action(
                workspace,
                self.actor,
                action,
                run_filter,
                expected_count=options["confirm"],
                source="cli",
            )
        except bulk.BadFilter as exc:
            flag = "" if exc.field in ("action", "filter") else f"--{exc.field.replace('_', '-')}: "
            raise CommandError(f"{flag}{exc.message}") from exc
        except bulk.BulkError as exc:
            raise CommandError(exc.message) from exc
        text = (
            f"Started bulk {job.action} #{job.pk} of {job.total} run{'s' if job.total != 1 else ''}"
            f"; follow it with `manage.py pipeline bulk-job {job.pk}`"
        )
        self._emit(options, bulk.job_dict(job), text)

    def _emit_preview(self, options: dict[str, Any], preview: bulk.Preview) -> None:
        lines = [
            f"{preview.count} run{'s' if preview.count != 1 else ''} to {preview.action} "
            f"({preview.filter.describe()})"
        ]
        lines += [
            f"  #{r.pk:<5} {r.stage.key:<14} {r.status:<10} {r.error_kind or '-':<10} "
            f"{r.provider or '-':<10} {r.created_at:%Y-%m-%d %H:%M}  {r.feature.title}"
            for r in preview.sample
        ]
        if preview.count > len(preview.sample):
            lines.append(f"  … and {preview.count - len(preview.sample)} more")
        if preview.count:
            lines.append(f"Act on them with --confirm {preview.count}.")
        data = {
            "action": preview.action,
            "filter": preview.filter.as_dict(),
            "count": preview.count,
            "sample": [run_dict(r) | {"feature": r.feature_id} for r in preview.sample],
        }
        self._emit(options, data, "\n".join(lines))

    def do_bulk_job(self, options: dict[str, Any]) -> None:
        job = (
            BulkAction.objects.select_related("workspace", "actor").filter(pk=options["id"]).first()
        )
        if job is None:
            raise CommandError(f"No bulk action #{options['id']}.")
        if self.actor is not None:
            try:
                access.get_workspace(self.actor, job.workspace.slug, admin=options["stop"])
            except Http404:
                raise CommandError(f"No bulk action #{options['id']}.") from None
        if options["stop"]:
            try:
                job = bulk.cancel_bulk_action(job, self.actor)
            except bulk.BulkError as exc:
                raise CommandError(exc.message) from exc
        lines = [bulk.progress_line(job)]
        if job.error:
            lines.append(f"  {job.error}")
        lines += [
            f"  #{line.run_id:<5} {line.outcome:<8} {line.message}"
            for line in bulk.item_lines(job, limit=50)
            if line.outcome != "pending"
        ]
        self._emit(options, bulk.job_dict(job, items=True), "\n".join(lines))


def counts_line(counts: tree_queries.Counts) -> str:
    return (
        f"{counts.stories} stories · {counts.subtasks} subtasks · {counts.done} done · "
        f"{counts.in_progress} in progress · {counts.blocked} blocked · {counts.failed} failed"
    )


def progress_line(progress: engine.Progress) -> str:
    line = (
        f"Batch #{progress.batch.pk} ({progress.batch.kind}): {progress.done} of "
        f"{progress.total} done"
    )
    if progress.running:
        line += " · processing " + ", ".join(f"#{c.pk}" for c in progress.running)
    if progress.failed:
        line += f" · {progress.failed} failed or stopped"
    line += f" · {'took' if progress.finished else 'elapsed'} {progress.elapsed_label}"
    if progress.finished:
        line += f" · {progress.message}"
    return line


def group_lines(group: tree_queries.EpicGroup, *, subtasks: bool = True) -> list[str]:
    head = (
        f"#{group.epic.pk} {group.epic.title} (epic · {group.epic.stage.name})"
        if group.epic is not None
        else "Stories without an epic"
    )
    lines = [head, f"  {counts_line(group.counts)}"]
    for story in group.shown:
        card = story.story.card
        lines.append(
            f"  └ #{card.pk} {card.title} [{story.story.state} · {card.stage.name}] "
            f"{story.done}/{len(story.subtasks)} subtasks done"
            + (f" · {card.status_note}" if card.status_note else "")
        )
        if subtasks:
            for item in story.shown:
                deps = ", ".join(f"#{pk}" for pk, _ in item.depends_on)
                lines.append(
                    f"      └ #{item.pk} {item.card.title} [{item.state} · "
                    f"{item.card.stage.name}]" + (f" after {deps}" if deps else "")
                )
    if group.batch is not None:
        lines.append(f"  {progress_line(group.batch)}")
    return lines
