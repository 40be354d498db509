"""The linkage report for admins: what one run did, how sure its model is, and for whom it links.

:func:`linkage_report` gathers a run's figures as JSON-able data (``GET /linkage/runs/{id}``);
:mod:`hub.linkage.report_page` renders them as a self-contained HTML page (``ovphub link report``
and ``GET /linkage/runs/{id}/report``). Admins only (:attr:`Permission.linkage_read`).

What is read:

- the run's row (:class:`~hub.db.models.LinkageRun`): counts, times, and ``params`` — engine
  settings, the Splink model (``m``/``u`` per comparison level, the blocking rules it ran), the
  match-weight histogram and the model's own precision/recall estimates;
- why the threshold is where it is: the comment on ``EngineSettings.threshold`` itself
  (:func:`threshold_rationale`);
- the run's ``linkage.run`` audit event (linkable records, permitted dataset pairs, actor);
- the merges and splits the run recorded (:class:`~hub.db.models.LinkageChange`), as counts;
- link rates by agency, age band, sex and race (:mod:`hub.linkage.link_rates`). They come from
  the person ids as they stand now: this run's for the latest run, while a later run may have
  moved some since (the page says so).

Nothing identifying is read or shown: no record key, token or person id; only counts, the
model's parameters and the stored (already generalized) values of age, sex and race.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.auth.policies import Actor, Permission, check_permission
from hub.db.models import AuditEvent, LinkageChange, LinkageRun, as_utc
from hub.errors import InvalidRequest, NotFound
from hub.linkage.link_rates import link_rates
from hub.pseudonymize import TOKEN_COLUMNS

#: The token families blocking rules are written in (see :mod:`hub.pseudonymize`).
FAMILY_WORDS: dict[str, str] = {
    "fn": "first name (first word, nickname group or compound name)",
    "fi": "first initial",
    "fsx": "Soundex of the first name",
    "mn": "middle name",
    "ln": "surname (or a word of a compound one)",
    "lsx": "Soundex of the surname",
    "dob": "birth date (or its day/month swap)",
    "by": "birth year",
    "md": "birth month and day (or their swap)",
    "sex": "sex",
    "zip3": "ZIP3",
    "sw": "first name keyed as a surname (for swapped names)",
}

# --- the run ----------------------------------------------------------------------------------


def get_run(session: Session, run_id: int | None = None) -> LinkageRun:
    """Run ``run_id``, or the latest finished run when ``None``."""
    if run_id is None:
        run = session.scalars(
            select(LinkageRun)
            .where(LinkageRun.status == "finished")
            .order_by(LinkageRun.id.desc())
            .limit(1)
        ).first()
        if run is None:
            raise NotFound("no linkage run has finished yet; run `ovphub link run` first")
        return run
    found = session.get(LinkageRun, run_id)
    if found is None:
        raise NotFound(f"no linkage run {run_id}; leave out the run id for the latest one")
    if found.status != "finished":
        raise InvalidRequest(f"linkage run {run_id} is {found.status}, not finished")
    return found


def _latest_finished_id(session: Session) -> int | None:
    return session.scalar(select(func.max(LinkageRun.id)).where(LinkageRun.status == "finished"))


def _audit_event(session: Session, run_id: int) -> dict[str, Any] | None:
    """The run's ``linkage.run`` audit event: its place in the chain, actor, time, details."""
    event = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "linkage.run", AuditEvent.subject == f"linkage_run:{run_id}")
        .limit(1)
    ).first()
    if event is None:
        return None
    payload = json.loads(event.payload)
    return {
        "seq": event.seq,
        "actor": event.actor,
        "at": payload.get("at"),
        "details": payload.get("details") or {},
    }


def _changes(session: Session, run_id: int) -> dict[str, int]:
    rows = session.execute(
        select(LinkageChange.kind, func.count(), func.coalesce(func.sum(LinkageChange.records), 0))
        .where(LinkageChange.run_id == run_id)
        .group_by(LinkageChange.kind)
    ).all()
    found = {kind: (int(n), int(records)) for kind, n, records in rows}
    merges, merged = found.get("merge", (0, 0))
    splits, split = found.get("split", (0, 0))
    return {
        "merges": merges,
        "records_merged": merged,
        "splits": splits,
        "records_split_off": split,
    }


def _weight(m: float | None, u: float | None) -> float | None:
    """log2(m/u), the evidence a level adds; ``None`` when it is not finite."""
    if not m or not u:
        return None
    return round(math.log2(m / u), 3)


def _odds_weight(p: float) -> float | None:
    """The match weight of probability ``p``: log2(p / (1 - p))."""
    return round(math.log2(p / (1 - p)), 3) if 0 < p < 1 else None


def comparisons(model: dict[str, Any]) -> list[dict[str, Any]]:
    """Each comparison's levels, best first, with ``m``, ``u`` and match weight log2(m/u). The
    null level (either record lacks the token) has neither: it adds no evidence."""
    out = []
    for comparison in model.get("comparisons") or []:
        levels = []
        for level in comparison.get("comparison_levels") or []:
            m, u = level.get("m_probability"), level.get("u_probability")
            levels.append(
                {
                    "label": str(level.get("label_for_charts") or level.get("sql_condition")),
                    "null_level": bool(level.get("is_null_level")),
                    "m": m,
                    "u": u,
                    "match_weight": _weight(m, u),
                    "tf_adjusted": bool(level.get("tf_adjustment_column")),
                }
            )
        out.append({"name": comparison.get("output_column_name"), "levels": levels})
    return out


_ROLE = re.compile(r":\w+:`~?([^`]+)`")
_SEE = re.compile(r"\s*\(see :\w+:`[^`]+`\)")


def threshold_rationale() -> str:
    """Why the threshold is where it is: the comment on ``EngineSettings.threshold`` in
    :mod:`hub.linkage.engine`, read from the source so that the page says what the engine's
    author wrote, never a stale copy. Cross-references to the code are left out."""
    from hub.linkage.engine import EngineSettings

    try:
        source = inspect.getsource(EngineSettings)
    except (OSError, TypeError):  # pragma: no cover - no source shipped
        source = ""
    said: list[str] = []
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("#:"):
            said.append(text[2:].strip())
        elif text.startswith("threshold:"):
            break
        else:
            said = []
    if not said:  # pragma: no cover - the comment was removed
        return "Pairs at or above this match probability are taken to be the same person."
    words = _SEE.sub("", " ".join(said))
    return _ROLE.sub(r"\1", words).replace("``", "")


#: Rules that compare one family with another, in words (unordered pairs of families).
CROSS_WORDS: dict[frozenset[str], str] = {
    frozenset(("sw", "ln")): "first name and surname swapped",
}
_EQUAL = re.compile(r'\bl\."?(\w+)"?\s*=\s*r\."?(\w+)"?')


def _family(column: str) -> str:
    """The token family of a blocking column: ``k_fn`` and ``t_fn2`` are both ``fn``."""
    if column.startswith("k_"):
        return column[2:]
    return TOKEN_COLUMNS.get(column, column)


def blocking_rules(model: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules that generated the candidate pairs, in words, as the model ran them (none when
    there was nothing to compare). ``permitted_only``: the rule keeps only pairs within one
    dataset or across a permitted pair."""
    ran = [
        r.get("blocking_rule", "")
        for r in model.get("blocking_rules_to_generate_predictions") or []
    ]
    out = []
    for sql in ran:
        families: list[str] = []
        words: list[str] = []
        for left, right in _EQUAL.findall(sql):
            a, b = _family(left), _family(right)
            if a == b:
                name, said = a, FAMILY_WORDS.get(a, a)
            else:
                pair = frozenset((a, b))
                name = "~".join(sorted(pair))
                said = CROSS_WORDS.get(
                    pair, f"{FAMILY_WORDS.get(a, a)} against the other's {FAMILY_WORDS.get(b, b)}"
                )
            if name not in families:
                families.append(name)
                words.append(said)
        out.append({"families": families, "words": words, "permitted_only": "k_mask" in sql})
    return out


def _threshold(params: dict[str, Any]) -> dict[str, Any]:
    from hub.linkage.engine import EngineSettings

    p = float((params.get("engine") or {}).get("threshold", EngineSettings().threshold))
    return {
        "probability": p,
        "match_weight": _odds_weight(p),
        "odds": round(p / (1 - p), 3) if p < 1 else None,
        "default": EngineSettings().threshold,
        "why": threshold_rationale(),
        # Datasets whose agreement sets its own: a pair links at the highest of the run's and
        # its two datasets' (runs that say "floored"; before, at the higher of its two).
        "agreements": dict(params.get("agreement_thresholds") or {}),
        "floored": bool(params.get("thresholds_floored")),
    }


def linkage_report(session: Session, actor: Actor, run_id: int | None = None) -> dict[str, Any]:
    """Everything the linkage report shows, for run ``run_id`` (default: the latest finished
    run), as JSON-able data. Admins only."""
    check_permission(actor, Permission.linkage_read)
    run = get_run(session, run_id)
    params = dict(run.params or {})
    model = params.get("model") or {}
    event = _audit_event(session, run.id)
    details = event["details"] if event else {}
    started = as_utc(run.started_at)
    finished = as_utc(run.finished_at) if run.finished_at else None
    prior = model.get("probability_two_random_records_match")
    latest = _latest_finished_id(session) == run.id
    return {
        "run": {
            "id": run.id,
            "method": run.method,
            "status": run.status,
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat() if finished else None,
            "seconds": round((finished - started).total_seconds(), 3) if finished else None,
            "records": run.records,
            "linkable_records": details.get("linkable_records"),
            "persons": run.persons,
            "links": run.links,
            "trained": params.get("trained"),
            "scored_pairs": params.get("scored_pairs"),
            "datasets": list(params.get("datasets") or []),
            "dataset_pairs": details.get("dataset_pairs") or [],
            "ids_changed": params.get("ids_changed"),
            "timings": params.get("timings") or {},
            "engine": params.get("engine") or {},
            "latest": latest,
            "key_rotation_overdue": list(params.get("key_rotation_overdue") or []),
        },
        "audit": {k: v for k, v in event.items() if k != "details"} if event else None,
        "threshold": _threshold(params),
        "estimates": list(params.get("estimates") or []),
        "prior": {
            "probability_two_random_records_match": prior,
            "match_weight": _odds_weight(float(prior)) if prior else None,
        },
        "comparisons": comparisons(model),
        "blocking_rules": blocking_rules(model),
        "histogram": list(params.get("histogram") or []),
        "changes": _changes(session, run.id),
        "link_rates": link_rates(
            session,
            list(params.get("datasets") or []),
            started.year,
            dict(params.get("consent_ends") or {}),
            params.get("consent_day"),
        ),
    }
