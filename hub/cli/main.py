"""``ovphub``: the command line. Every command calls the same services as the API.

The CLI acts as a named local user (``--as NAME``, default ``admin``, created on first use) and
goes through the same authorization policies as an API token would.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from hub.cli.agreements import agreements_app
from hub.cli.common import State, acting, emit, fail, handles_errors
from hub.cli.uploads import ProgressLine, uploads_app

if TYPE_CHECKING:
    from hub.releases.service import ReleaseRequest

app = typer.Typer(
    help="OVP Hub: agreements as code, pseudonymized ingest, linkage, DP releases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
users_app = typer.Typer(help="Users, roles and API tokens.", no_args_is_help=True)
link_app = typer.Typer(help="Record linkage on pseudonymized tokens.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
keys_app = typer.Typer(
    help="The secret key file (kept outside the database).", no_args_is_help=True
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


class _ReleaseGroup(TyperGroup):
    """``ovphub release AGGREGATE_ID`` makes a release (the ``create`` command, implied);
    ``ovphub release preview AGGREGATE_ID`` previews one."""

    default_command = "create"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # click.Context (vendored)
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


release_app = typer.Typer(
    cls=_ReleaseGroup,
    help="DP releases: `release AGGREGATE_ID` makes one, `release preview AGGREGATE_ID` shows "
    "what it would cost and how accurate it would be.",
    no_args_is_help=True,
)
app.add_typer(agreements_app, name="agreements")
app.add_typer(users_app, name="users")
app.add_typer(link_app, name="link")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(uploads_app, name="uploads")
app.add_typer(release_app, name="release")


@app.callback()
def main(
    as_user: Annotated[
        str, typer.Option("--as", help="Act as this hub user (default: the local admin)")
    ] = "admin",
) -> None:
    State["as"] = as_user


# --- users ------------------------------------------------------------------------------------


@users_app.command("add")
@handles_errors
def users_add(
    name: Annotated[str, typer.Argument(help="User name")],
    role: Annotated[str, typer.Option(help="steward, analyst, legal or admin")],
    party: Annotated[
        str | None, typer.Option(help="Agency a steward acts for, e.g. org:police")
    ] = None,
) -> None:
    """Create a user (admin only)."""
    from hub import audit
    from hub.auth.policies import Permission, Role, check_permission
    from hub.auth.service import create_user

    try:
        role_value = Role(role)
    except ValueError:
        fail(f"unknown role {role!r}; choose steward, analyst, legal or admin")
    with acting() as (hub, actor):
        check_permission(actor, Permission.users_manage)
        with hub.session() as s:
            event = audit.Event(
                actor.label, "user.create", f"user:{name}", {"role": role, "party": party}
            )
            user = create_user(s, name, role_value, party, event)
            created = {"user": user.name, "role": user.role, "party": user.party_id}
    emit(created)


@users_app.command("token")
@handles_errors
def users_token(
    name: Annotated[str, typer.Argument(help="User to issue an API token for")],
    label: Annotated[str, typer.Option(help="What the token is for")] = "",
) -> None:
    """Issue an API token (shown once; only its hash is stored). Admin only."""
    from hub import audit
    from hub.auth.policies import Permission, check_permission
    from hub.auth.service import get_user, issue_token

    with acting() as (hub, actor):
        check_permission(actor, Permission.users_manage)
        with hub.session() as s:
            user = get_user(s, name)
            token = issue_token(
                s,
                user,
                label,
                audit.Event(actor.label, "token.issue", f"user:{name}", {"label": label}),
            )
    typer.echo(token)
    typer.echo("store it now: the hub keeps only its hash and cannot show it again", err=True)


# --- data -------------------------------------------------------------------------------------


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Option(help="Directory to write the extracts to")],
    people: Annotated[int, typer.Option(help="Size of the synthetic population", min=0)] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files")] = 1,
) -> None:
    """Write synthetic extracts for the four example partners, plus truth.csv."""
    from hub.synth import generate

    summary = generate(out, people=people, seed=seed)
    emit(
        {
            "out_dir": summary.out_dir,
            "seed": summary.seed,
            "window": [summary.window_start, summary.window_end],
            "people": summary.people,
            "people_in_two_or_more": summary.people_in_two_or_more,
            "rows": dict(summary.row_counts),
            "files": {ds: str(path) for ds, path in summary.paths.items()},
            "truth": summary.truth_path,
        }
    )


@app.command("upload")
@handles_errors
def upload(
    file: Annotated[Path, typer.Argument(help="The extract (CSV, XLSX or Parquet)")],
    agreement: Annotated[str, typer.Option(help="Agreement id, e.g. dsa-police-victimizations")],
    dataset: Annotated[str, typer.Option(help="Dataset id, e.g. police_victimizations")],
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Show rows done and rows/s on stderr (default: when stderr is a terminal)",
        ),
    ] = None,
) -> None:
    """Validate, pseudonymize and store an extract; print the receipt (exit 2 if rejected; a
    refused upload stores nothing and is recorded in the audit log as `upload.reject`). The
    file goes to the service by path, which reads it in chunks."""
    from hub.ingest.attempts import UploadAttempt

    if not file.is_file():
        fail(f"no such file: {file}")
    show = sys.stderr.isatty() if progress is None else progress
    with acting() as (hub, actor):
        line = ProgressLine() if show else None
        attempt = UploadAttempt(actor, agreement, dataset, via="cli")
        try:
            receipt = attempt.run(hub, file, progress=line)
        except BaseException:
            if line is not None:
                line.close()
            raise
        if line is not None:
            line.close(receipt.rows_received)
    emit(receipt.to_dict())


@link_app.command("run")
@handles_errors
def link_run() -> None:
    """Link records across permitted datasets into pseudonymous person ids (admin only).

    Progress (each stage and scoring chunk, with its time) goes to stderr; the summary, as
    JSON, to stdout."""
    from hub.auth.policies import Permission, check_permission
    from hub.linkage.service import engine_settings, run_linkage

    def progress(message: str) -> None:
        typer.echo(f"linkage: {message}", err=True)

    with acting() as (hub, actor):
        check_permission(actor, Permission.linkage_run)
        settings = engine_settings(hub.settings)
        summary = hub.transact(
            lambda s: run_linkage(s, actor.label, hub.today(), settings, progress)
        )
    emit(summary.to_dict())


@link_app.command("evaluate")
@handles_errors
def link_evaluate(
    truth: Annotated[
        Path,
        typer.Option(help="truth.csv: dataset, record_id, person_id", exists=True, dir_okay=False),
    ],
) -> None:
    """Precision, recall and F1 of the current linkage against a ground truth, as JSON."""
    from hub.auth.policies import Permission, check_permission
    from hub.linkage.evaluate import evaluate

    with acting() as (hub, actor), hub.session() as s:
        check_permission(actor, Permission.linkage_evaluate)
        quality = evaluate(s, hub.keys, truth)
    emit(quality)


@link_app.command("report")
@handles_errors
def link_report(
    out: Annotated[Path, typer.Option(help="Where to write the HTML page")],
    run: Annotated[
        int | None, typer.Option("--run", help="A linkage run id (default: the latest finished)")
    ] = None,
) -> None:
    """Write the linkage report of a run as one HTML page (admin only): threshold and why, the
    model's own precision/recall estimates, m/u parameters, match-weight histogram, blocking
    rules, link rates by agency, age band, sex and race, merges and splits. Prints its path."""
    from hub.linkage.report_page import report_html

    with acting() as (hub, actor), hub.session() as s:
        page = report_html(s, actor, run)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    typer.echo(str(out))


# --- releases ---------------------------------------------------------------------------------

DATE = ["%Y-%m-%d"]
AggregateArg = Annotated[str, typer.Argument(help="An approved aggregate, see `ovphub catalogue`")]
WindowStart = Annotated[
    dt.datetime | None,
    typer.Option(formats=DATE, help="Window start YYYY-MM-DD (default: 24 months back)"),
]
WindowEnd = Annotated[
    dt.datetime | None,
    typer.Option(formats=DATE, help="Window end YYYY-MM-DD (default: last month's end)"),
]
Recipient = Annotated[str, typer.Option(help="Who receives the release (must be allowed)")]


def release_request(
    today: dt.date,
    aggregate_id: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    recipient: str,
) -> ReleaseRequest:
    """The request the options describe, with the default window where one is not given."""
    from hub.releases.service import ReleaseRequest

    return ReleaseRequest.with_default_window(
        today, aggregate_id, start.date() if start else None, end.date() if end else None, recipient
    )


@release_app.command("create")
@handles_errors
def release(
    aggregate_id: AggregateArg,
    start: WindowStart = None,
    end: WindowEnd = None,
    recipient: Recipient = "public",
) -> None:
    """Release an approved aggregate with differential privacy (or return the cached one); a new
    public release regenerates the dashboard and transparency page under the data directory."""
    from hub.releases.views import release_and_publish

    with acting() as (hub, actor):
        req = release_request(hub.today(), aggregate_id, start, end, recipient)
        view = release_and_publish(hub, actor, req)
    emit(view)


@app.command("catalogue")
@handles_errors
def catalogue() -> None:
    """Every aggregate the agreements approve, with its privacy cost per release."""
    from hub.auth.policies import Permission, check_permission
    from hub.releases.views import catalogue_entries

    with acting() as (hub, actor), hub.session() as s:
        check_permission(actor, Permission.releases_read)
        entries = catalogue_entries(s)
    emit(entries)


@app.command("budget")
@handles_errors
def budget() -> None:
    """Privacy budget spent and remaining, per agreement and period."""
    from hub.auth.policies import Permission, check_permission
    from hub.releases.service import budget_status

    with acting() as (hub, actor), hub.session() as s:
        check_permission(actor, Permission.releases_read)
        status = budget_status(s)
    emit(status)


@app.command("dashboard")
@handles_errors
def dashboard(
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for index.html (default: HUB_DATA_DIR/dashboard)"),
    ] = None,
) -> None:
    """Write the static public dashboard of all releases."""
    from hub.releases.views import write_dashboard

    with acting() as (hub, actor), hub.session() as s:
        index = write_dashboard(s, actor, out or hub.settings.data_dir / "dashboard")
    typer.echo(str(index))


# --- operations -------------------------------------------------------------------------------


@db_app.command("upgrade")
@handles_errors
def db_upgrade() -> None:
    """Create or migrate the database to the latest schema (needs no key file)."""
    from hub.db.migrate import upgrade
    from hub.db.session import make_engine
    from hub.settings import Settings

    engine = make_engine(Settings().resolved_database_url)
    try:
        upgrade(engine)
        where = engine.url.render_as_string(hide_password=True)
    finally:
        engine.dispose()
    typer.echo(f"database at {where} is up to date")


@keys_app.command("new-signer")
@handles_errors
def keys_new_signer(
    party: Annotated[str, typer.Option(help="The party the signatory signs for, e.g. org:police")],
    name: Annotated[str, typer.Option(help="The signatory's name")],
    out: Annotated[Path, typer.Option(help="Where to write the private key (kept by the signer)")],
    title: Annotated[str, typer.Option(help="The signatory's title")] = "",
) -> None:
    """Create a signatory's Ed25519 key pair: the private key goes to --out (mode 0600) and
    stays with the signatory; the hub registers only the public key."""
    from contracts import signing
    from hub import audit
    from hub.agreements.signatures import register_signer
    from hub.auth.policies import Permission, check_permission

    with acting() as (hub, actor):
        check_permission(actor, Permission.agreements_write)
        try:
            public = signing.new_private_key(out)
        except signing.SigningError as exc:
            fail(str(exc))
        with hub.session() as s:
            event = audit.Event(
                actor.label,
                "signer.register",
                f"signer:{name}",
                {"party": party, "fingerprint": signing.fingerprint(public)},
            )
            signer = register_signer(s, party, name, title, public, event)
            emit(
                {
                    "signer": signer.name,
                    "party": signer.party_id,
                    "fingerprint": signer.fingerprint,
                    "private_key": str(out),
                }
            )


@keys_app.command("init")
@handles_errors
def keys_init() -> None:
    """Create the key file (refuses to overwrite one). The key itself is never printed."""
    from hub.keys import FileKeyStore
    from hub.settings import Settings

    store = FileKeyStore.create(Settings().resolved_key_file)
    typer.echo(f"created {store.path} with key id {store.active_key_id}")


@keys_app.command("rotate")
@handles_errors
def keys_rotate() -> None:
    """Add a new key and re-key every stored token with it, without the raw data (admins).

    Safe to re-run: an interrupted rotation is finished, never applied twice. Old keys stay in
    the key file (new uploads apply the whole chain); the keys themselves are never printed."""
    from hub.auth.policies import Permission, check_permission
    from hub.rotation import rotate

    with acting() as (hub, actor):
        check_permission(actor, Permission.keys_rotate)
        emit(rotate(hub, actor.label).to_dict())


@keys_app.command("status")
@handles_errors
def keys_status() -> None:
    """The key id in use, since when it keys the stored tokens, and when each agreement in
    force that sets linkage.key_rotation_days wants it rotated (admins). Exits 1 when a
    rotation is overdue, so a scheduler can alert on it."""
    from hub.auth.policies import Permission, check_permission
    from hub.rotation import keys_in_use_since, rotation_due

    with acting() as (hub, actor):
        check_permission(actor, Permission.keys_rotate)
        with hub.session() as s:
            since = keys_in_use_since(s)
            due = rotation_due(s, hub.today())
        emit(
            {
                "active_key_id": hub.keys.active_key_id,
                "in_use_since": since.isoformat() if since else None,
                "rotation": [r.to_dict() for r in due],
            }
        )
    if any(r.overdue for r in due):
        raise typer.Exit(1)


@app.command("retention")
@handles_errors
def retention() -> None:
    """Destroy the data of terminated agreements whose destruction date has come (cron-safe).
    Prints one certificate per order carried out."""
    from hub.auth.policies import Permission, check_permission
    from hub.retention import run_due_destruction

    with acting() as (hub, actor):
        check_permission(actor, Permission.retention_run)
        with hub.session() as s:
            done = run_due_destruction(s, hub.today(), actor.label)
        emit(done)


@audit_app.command("verify")
@handles_errors
def audit_verify() -> None:
    """Recompute the audit log's hash chain; exit 1 if it was tampered with."""
    from hub import audit

    with acting() as (hub, _), hub.session() as s:
        check = audit.verify(s)
    emit(check.__dict__)
    if not check.ok:
        raise typer.Exit(1)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Start the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    uvicorn.run("hub.api.app:create_app", factory=True, host=host, port=port)


@app.command("demo")
@handles_errors
def demo(
    out: Annotated[Path, typer.Option(help="Demo directory (recreated)")] = Path("var/demo"),
    people: Annotated[int, typer.Option(help="Synthetic population size", min=0)] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 7,
) -> None:
    """The whole flow on a fresh SQLite database, with a summary of what happened."""
    from hub.demo import run_demo

    run_demo(out, people=people, seed=seed, say=typer.echo)


# --- release preview (issue 6, item 4) ----------------------------------------------------------


@release_app.command("preview")
@handles_errors
def release_preview(
    aggregate_id: AggregateArg,
    start: WindowStart = None,
    end: WindowEnd = None,
    recipient: Recipient = "public",
) -> None:
    """Show, spending nothing, how accurate a release would be and what it would cost each
    agreement it charges (budgets, in that agreement's own unit). Counts and sums have a 95%
    error bound per cell; means and rates state an interval per cell once computed, so their
    error_bound_95 is null and noisy_parts gives each noisy part's 95% bound."""
    from hub.releases.service import preview_release

    with acting() as (hub, actor):
        req = release_request(hub.today(), aggregate_id, start, end, recipient)
        with hub.session() as s:
            plan = preview_release(s, actor, req, hub.today())
    emit(plan)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
