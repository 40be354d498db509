"""``ovphub agreements ...``: the legal staff's workflow.

write → ``lint`` → ``load`` (a draft version) → ``render`` / ``diff`` → ``submit`` → each party's
signatory ``sign``s → ``approve`` per governance body → ``activate`` (the gate checks signatures,
approvals and dates) → later ``suspend`` / ``reinstate`` / ``terminate``; ``expire-due`` records
expiries (which take effect by date regardless).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from contracts.loader import parse_agreement
from hub.agreements.views import lifecycle_view, status_view
from hub.cli.common import acting, emit, handles_errors

agreements_app = typer.Typer(
    help="Data-sharing agreements: lint, load, render, diff, sign, approve, activate.",
    no_args_is_help=True,
)

Ref = Annotated[str, typer.Argument(help="Agreement id, optionally @version (default: latest)")]
Reason = Annotated[str, typer.Option(help="Why (kept in the audit log)")]


def _split(ref: str) -> tuple[str, str | None]:
    agreement_id, _, version = ref.partition("@")
    return agreement_id, version or None


@agreements_app.command("lint")
def agreements_lint(
    paths: Annotated[list[Path], typer.Argument(help="Agreement YAML files to check")],
    as_json: Annotated[bool, typer.Option("--json", help="Print problems as JSON")] = False,
) -> None:
    """Report every problem in each agreement, with its YAML path and line. Exit 1 if any.
    Given several files, also checks them as a set (link_with names exist and name each other
    back, one agreement per dataset, one legal name per party)."""
    from contracts.loader import lint_agreements

    problems: list[dict[str, Any]] = [
        {"file": str(p), "path": "", "line": None, "message": "no such file"}
        for p in paths
        if not p.is_file()
    ]
    existing = [p for p in paths if p.is_file()]
    if len(existing) > 1:
        problems += [p.as_dict() for p in lint_agreements(existing)]
    elif existing:
        _, found = parse_agreement(existing[0].read_text(encoding="utf-8"), str(existing[0]))
        problems += [p.as_dict() for p in found]
    if as_json:
        emit({"problems": problems, "files": len(paths)})
    else:
        for p in problems:
            where = f"{p['file']}:{p['line']}" if p["line"] else p["file"]
            typer.echo(f"{where}: {p['path'] or '(document)'}: {p['message']}")
        typer.echo(f"{len(paths)} file(s) checked, {len(problems)} problem(s)", err=True)
    if problems:
        raise typer.Exit(1)


@agreements_app.command("schema")
def agreements_schema() -> None:
    """Print the JSON Schema of the agreement spec (for editors that validate YAML)."""
    from contracts.model import Agreement

    emit(Agreement.model_json_schema(by_alias=True))


@agreements_app.command("load")
@handles_errors
def agreements_load(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Agreement files (default: the shipped examples)", exists=True, dir_okay=False
        ),
    ] = None,
) -> None:
    """Lint and register agreement versions (legal and admin only)."""
    from contracts.loader import example_agreement_paths
    from hub.agreements.service import register_file
    from hub.auth.policies import Permission, check_permission

    with acting() as (hub, actor):
        check_permission(actor, Permission.agreements_write)
        out = []
        with hub.session() as s:
            for path in paths or example_agreement_paths():
                row, created = register_file(s, path, actor.label)
                out.append(
                    {
                        "agreement": f"{row.agreement_id}@{row.version}",
                        "status": row.status,
                        "sha256": row.sha256,
                        "created": created,
                    }
                )
    emit(out)


@agreements_app.command("list")
@handles_errors
def agreements_list() -> None:
    """The agreement versions that govern each dataset."""
    from hub.agreements.service import current_versions
    from hub.auth.policies import Permission, check_permission

    with acting() as (hub, actor), hub.session() as s:
        check_permission(actor, Permission.agreements_read)
        emit(
            [
                {
                    "agreement": g.spec.ref,
                    "status": g.row.status,
                    "title": g.spec.agreement.title,
                    "effective": g.spec.agreement.effective_date,
                    "expiry": g.spec.agreement.expiry_date,
                    "datasets": [d.id for d in g.spec.datasets],
                    "aggregates": [a.id for a in g.spec.outputs.aggregates],
                }
                for g in current_versions(s)
            ]
        )


def _move(ref: str, to_status: str, reason: str) -> None:
    from hub.agreements.lifecycle import transition
    from hub.agreements.service import get_version

    with acting() as (hub, actor):
        with hub.session() as s:
            gov = get_version(s, *_split(ref))
            transition(s, gov.row, gov.spec, to_status, actor, hub.today(), reason)
            view = lifecycle_view(gov, hub.today())
        emit(view)


@agreements_app.command("submit")
@handles_errors
def agreements_submit(ref: Ref) -> None:
    """Send a draft version for review (draft → under_review)."""
    _move(ref, "under_review", "")


@agreements_app.command("activate")
@handles_errors
def agreements_activate(ref: Ref) -> None:
    """Activate a version: refused unless every party has signed, every required approval is
    recorded and it has not expired. It then governs its datasets (superseding the old one)."""
    _move(ref, "active", "")


@agreements_app.command("suspend")
@handles_errors
def agreements_suspend(ref: Ref, reason: Reason) -> None:
    """Suspend an active version: ingest, linkage and release stop at once."""
    _move(ref, "suspended", reason)


@agreements_app.command("reinstate")
@handles_errors
def agreements_reinstate(ref: Ref, reason: Reason) -> None:
    """Reinstate a suspended version (the activation gate applies again)."""
    _move(ref, "active", reason)


@agreements_app.command("terminate")
@handles_errors
def agreements_terminate(ref: Ref, reason: Reason) -> None:
    """Terminate a version: everything stops, and destruction is scheduled as retention says."""
    _move(ref, "terminated", reason)


@agreements_app.command("status")
@handles_errors
def agreements_status(ref: Ref) -> None:
    """Lifecycle state, signatures (valid or not), approvals and what can happen next."""
    from hub.agreements.service import get_version
    from hub.auth.policies import Permission, check_permission

    with acting() as (hub, actor), hub.session() as s:
        check_permission(actor, Permission.agreements_read)
        emit(status_view(s, get_version(s, *_split(ref)), hub.today()))


@agreements_app.command("verify")
@handles_errors
def agreements_verify(ref: Ref) -> None:
    """Check every signature of a version against its current text. Exit 1 if any is invalid
    or a party has not signed."""
    from hub.agreements.service import get_version
    from hub.agreements.signatures import signature_status
    from hub.auth.policies import Permission, check_permission

    with acting() as (hub, actor), hub.session() as s:
        check_permission(actor, Permission.agreements_read)
        gov = get_version(s, *_split(ref))
        sigs = signature_status(s, gov.row, gov.spec)
    emit(
        {
            "agreement": gov.spec.ref,
            "complete": sigs.complete,
            "signatures": sigs.details,
            "unsigned_parties": sigs.unsigned_parties,
        }
    )
    if not sigs.complete:
        raise typer.Exit(1)


@agreements_app.command("sign")
@handles_errors
def agreements_sign(
    ref: Ref,
    key: Annotated[Path, typer.Option(help="The signatory's private key (from keys new-signer)")],
) -> None:
    """Sign a version's canonical text with a registered signatory's Ed25519 key."""
    from hub.agreements.service import get_version
    from hub.agreements.signatures import sign_version
    from hub.auth.policies import Permission, check_permission

    with acting() as (hub, actor):
        check_permission(actor, Permission.agreements_write)
        with hub.session() as s:
            gov = get_version(s, *_split(ref))
            sig = sign_version(s, gov.row, gov.spec, key, actor.label)
            out = {
                "agreement": gov.spec.ref,
                "party": sig.party_id,
                "signed_sha256": sig.signed_sha256,
            }
        emit(out)


@agreements_app.command("approve")
@handles_errors
def agreements_approve(
    ref: Ref,
    body: Annotated[str, typer.Option(help="Governance body, e.g. data_governance_board")],
    decision: Annotated[str, typer.Option(help="approved, rejected or deferred")] = "approved",
    reference: Annotated[str, typer.Option(help="Minutes or memo reference")] = "",
) -> None:
    """Record a governance body's decision on a version."""
    from hub.agreements.service import get_version
    from hub.agreements.signatures import record_approval
    from hub.auth.policies import Permission, check_permission

    with acting() as (hub, actor):
        check_permission(actor, Permission.agreements_write)
        with hub.session() as s:
            gov = get_version(s, *_split(ref))
            record_approval(s, gov.row, gov.spec, body, decision, reference, actor.label)
        emit({"agreement": gov.spec.ref, "body": body, "decision": decision})


@agreements_app.command("expire-due")
@handles_errors
def agreements_expire_due() -> None:
    """Record the expiry of every version past its expiry date (safe to run from cron)."""
    from hub.agreements.lifecycle import expire_due

    with acting() as (hub, _), hub.session() as s:
        emit({"expired": expire_due(s, hub.today())})


@agreements_app.command("setup")
@handles_errors
def agreements_setup(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Agreement files (default: the shipped examples)", exists=True, dir_okay=False
        ),
    ] = None,
    signer_keys: Annotated[
        Path, typer.Option(help="Folder for one signing key per party (created if missing)")
    ] = Path("var/signers"),
) -> None:
    """For trying the hub and first setup: load each agreement, create one signing key per
    party in --signer-keys, sign, record the required approvals and activate — the same steps
    and gate as load/sign/approve/activate, in one go."""
    from contracts.loader import example_agreement_paths
    from hub.agreements.ceremony import sign_approve_activate
    from hub.agreements.service import Governing, register_file, spec_of
    from hub.auth.policies import Permission, check_permission

    with acting() as (hub, actor):
        check_permission(actor, Permission.agreements_write)
        out = []
        with hub.session() as s:
            for path in paths or example_agreement_paths():
                row, _ = register_file(s, path, actor.label)
                spec = spec_of(row)
                if row.status in ("draft", "under_review"):
                    sign_approve_activate(s, row, spec, signer_keys, actor, hub.today())
                out.append(lifecycle_view(Governing(row, spec), hub.today()))
        emit(out)


@agreements_app.command("render")
@handles_errors
def agreements_render(
    ref: Ref,
    out: Annotated[Path | None, typer.Option(help="Folder for <id>@<version>.md and .html")] = None,
) -> None:
    """Write the agreement in plain language (Markdown and HTML): who shares what, for what,
    what may come out, who may see it, how long it is kept. Without --out, print Markdown."""
    from contracts.readable import render_html, render_markdown
    from hub.agreements.service import get_version
    from hub.auth.policies import Permission, Role, check_permission

    with acting() as (hub, actor), hub.session() as s:
        check_permission(actor, Permission.agreements_read)
        gov = get_version(s, *_split(ref))
    parties = {p.id for p in gov.spec.parties}
    if actor.role == Role.steward and actor.party_id not in parties:
        from hub.errors import NotAllowed

        raise NotAllowed(f"{actor.label} is not a party to {gov.spec.ref}")
    if out is None:
        typer.echo(render_markdown(gov.spec))
        return
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{gov.spec.ref}.md"
    html = out / f"{gov.spec.ref}.html"
    md.write_text(render_markdown(gov.spec), encoding="utf-8")
    html.write_text(render_html(gov.spec), encoding="utf-8")
    emit({"markdown": str(md), "html": str(html)})


@agreements_app.command("diff")
@handles_errors
def agreements_diff(
    agreement_id: Annotated[str, typer.Argument(help="Agreement id")],
    v1: Annotated[str, typer.Argument(help="The older version, e.g. 1.0.0")],
    v2: Annotated[str, typer.Argument(help="The newer version, e.g. 1.1.0")],
    as_json: Annotated[bool, typer.Option("--json", help="Print changes as JSON")] = False,
) -> None:
    """What changed between two versions, in plain language."""
    from contracts.readable import diff_agreements, format_diff
    from hub.agreements.service import get_version
    from hub.auth.policies import Permission, check_permission

    with acting() as (hub, actor), hub.session() as s:
        check_permission(actor, Permission.agreements_read)
        old, new = get_version(s, agreement_id, v1), get_version(s, agreement_id, v2)
    changes = diff_agreements(old.spec, new.spec)
    if as_json:
        emit([c.as_dict() for c in changes])
    else:
        typer.echo(format_diff(changes))


@agreements_app.command("export-odrl")
@handles_errors
def agreements_export_odrl(ref: Ref) -> None:
    """The agreement as an ODRL 2.2 JSON-LD policy, for partners who use ODRL."""
    from contracts.readable import to_odrl
    from hub.agreements.service import get_version
    from hub.auth.policies import Permission, check_permission

    with acting() as (hub, actor), hub.session() as s:
        check_permission(actor, Permission.agreements_read)
        gov = get_version(s, *_split(ref))
    emit(to_odrl(gov.spec))
