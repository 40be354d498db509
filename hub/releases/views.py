"""What callers see of releases and the catalogue: JSON-able views, the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from hub.agreements.service import current_versions
from hub.auth.policies import Actor
from hub.db.models import Release
from hub.releases.service import list_releases


def release_view(release: Release, cached: bool) -> dict[str, Any]:
    """The release as published: the manifest (cells, mechanism, privacy loss, accuracy)."""
    return {**release.manifest, "cached": cached}


def release_csv(release: Release) -> str:
    """The release's cells as CSV, safe to open in a spreadsheet (no field can run as a
    formula); suppressed cells read ``<N`` with no number."""
    from publishers.dashboard import render_csv

    return render_csv(release.manifest)


def catalogue_entries(session: Session) -> list[dict[str, Any]]:
    """Every approved aggregate, with what it costs and what it needs."""
    from publishers.release import privacy_cost

    out = []
    for gov in current_versions(session):
        spec = gov.spec
        for agg in spec.outputs.aggregates:
            out.append(
                {
                    "aggregate_id": agg.id,
                    "title": agg.title,
                    "agreement": spec.ref,
                    "status": gov.row.status,
                    "dataset": agg.dataset,
                    "measure": agg.measure,
                    "dimensions": list(agg.dimensions),
                    "filters": {k: list(v) for k, v in agg.filters.items()},
                    "channel": agg.channel,
                    "privacy_model": spec.outputs.privacy.model,
                    "privacy_loss_per_release": privacy_cost(spec, agg.id),
                    "min_cell": spec.outputs.min_cell,
                    "recipients_allowed": list(spec.outputs.recipients_allowed),
                }
            )
    return out


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
