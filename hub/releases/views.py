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
    from publishers.dashboard import render_dashboard

    # The dashboard is public: only releases made for the public go on it.
    manifests = [r.manifest for r in list_releases(session, actor, public_only=True)]
    return render_dashboard(manifests, out_dir)
