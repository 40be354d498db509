"""What callers see of releases and the catalogue: JSON-able views, the dashboard."""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from hub.agreements.service import current_versions
from hub.auth.policies import Actor
from hub.db.models import Release
from hub.releases.service import ReleaseRequest, list_releases, request_release

if TYPE_CHECKING:
    from hub.context import Hub

log = logging.getLogger(__name__)


def release_view(release: Release, cached: bool) -> dict[str, Any]:
    """The release as published: the manifest (cells, mechanism, privacy loss, accuracy)."""
    return {**release.manifest, "cached": cached}


def release_csv(release: Release) -> str:
    """The release's cells as CSV, safe to open in a spreadsheet (no field can run as a
    formula); suppressed cells read ``<N`` with no number."""
    from publishers.downloads import render_csv

    return render_csv(release.manifest)


def catalogue_entries(session: Session) -> list[dict[str, Any]]:
    """Every approved aggregate, with what it costs and what it needs. ``privacy_model`` and
    ``privacy_loss_per_release`` are the release's own; ``charges`` lists what each agreement
    whose data it reads pays, in its own unit (two for an aggregate over linked data, whose
    release runs under pure DP when either agreement is pure DP)."""
    from publishers.release import definition_of, release_terms

    versions = current_versions(session)
    declares = {ds.id: gov.spec for gov in versions for ds in gov.spec.datasets}
    out = []
    for gov in versions:
        spec = gov.spec
        for agg in spec.outputs.aggregates:
            linked = [declares[e.dataset] for e in agg.linked_events if e.dataset in declares]
            terms = release_terms(spec, agg.id, linked)
            out.append(
                {
                    "aggregate_id": agg.id,
                    "title": agg.title,
                    "agreement": spec.ref,
                    "status": gov.row.status,
                    "dataset": agg.dataset,
                    "measure": agg.measure,
                    **definition_of(agg),
                    "dimensions": list(agg.dimensions),
                    "filters": {k: list(v) for k, v in agg.filters.items()},
                    "channel": agg.channel,
                    "privacy_model": terms.privacy_model,
                    "privacy_loss_per_release": terms.loss,
                    "charges": [c.as_dict() for c in terms.charges],
                    "min_cell": spec.outputs.min_cell,
                    "recipients_allowed": list(spec.outputs.recipients_allowed),
                }
            )
    return out


def release_and_publish(hub: Hub, actor: Actor, req: ReleaseRequest) -> dict[str, Any]:
    """Make (or fetch the cached) release, committed; when it is a new public release,
    regenerate the public pages (:func:`publish_public_pages`). The view of the release."""
    view = hub.transact(lambda s: release_view(*request_release(s, actor, req, hub.today())))
    if not view["cached"] and req.recipient == "public":
        try:
            publish_public_pages(hub, actor)
        except OSError:
            # The release stands (its budget is spent); the pages catch up with the next one
            # or with `ovphub dashboard`.
            log.exception("could not regenerate the public pages after release %s", view["id"])
    return view


def publish_public_pages(hub: Hub, actor: Actor) -> Path:
    """Regenerate the dashboard and transparency page in ``<data_dir>/dashboard`` from what is
    committed now. One writer at a time, across threads and processes (a lock file), so the
    last to write has read the newest releases; each page is replaced atomically."""
    out_dir = hub.settings.data_dir / "dashboard"
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with hub.session() as s:
            return write_dashboard(s, actor, out_dir)


def write_dashboard(session: Session, actor: Actor, out_dir: Path) -> Path:
    """Write the public dashboard (``index.html``) and, beside it, the transparency page
    (``transparency.html``), both from the same public releases. Returns the dashboard's
    path."""
    from publishers.dashboard import render_dashboard
    from publishers.transparency import render_transparency

    # Both pages are public: only releases made for the public go on them.
    manifests = [r.manifest for r in list_releases(session, actor, public_only=True)]
    render_transparency(manifests, out_dir)
    return render_dashboard(manifests, out_dir)
