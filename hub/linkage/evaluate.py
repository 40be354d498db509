"""Linkage quality against ground truth (synthetic ``truth.csv``: dataset, record_id, person_id).

Truth record ids are raw record keys; they are keyed with the dataset's record key to find the
hub's records, in memory only, so evaluation needs the key file (an admin task). Records under a
no-linkage or aggregate-only rule are excluded: they are singletons by design, not by mistake.

Pairwise metrics count record pairs: a true pair is two records of the same true person; a
predicted pair is two records with the same person id.
"""

from __future__ import annotations

import csv
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import PersonLink, Record
from hub.errors import InvalidRequest
from hub.keys import Hasher, KeyStore
from hub.pseudonymize import record_purpose


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


@dataclass(frozen=True)
class Quality:
    precision: float
    recall: float
    f1: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int

    @staticmethod
    def of(tp: int, true_pairs: int, predicted: int) -> Quality:
        p = tp / predicted if predicted else 1.0
        r = tp / true_pairs if true_pairs else 1.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return Quality(round(p, 6), round(r, 6), round(f1, 6), true_pairs, predicted, tp)


def evaluate(session: Session, keys: KeyStore, truth_path: Path) -> dict[str, Any]:
    truth: dict[tuple[str, str], str] = {}
    hashers: dict[str, Hasher] = {}
    with truth_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"dataset", "record_id", "person_id"} - set(reader.fieldnames or [])
        if missing:
            raise InvalidRequest(f"{truth_path} lacks column(s) {sorted(missing)}")
        for row in reader:
            ds = row["dataset"]
            hasher = hashers.get(ds) or hashers.setdefault(ds, Hasher(keys, record_purpose(ds)))
            truth[(ds, hasher.token(f"record_key|{row['record_id'].strip()}"))] = row["person_id"]

    found = session.execute(
        select(
            Record.dataset_id,
            Record.record_key,
            Record.no_linkage,
            Record.aggregate_only,
            PersonLink.person_id,
        ).join(PersonLink, PersonLink.record_id == Record.id, isouter=True)
    ).all()
    if any(r.person_id is None for r in found):
        raise InvalidRequest("some records have no person id yet; run `ovphub link run` first")
    items = [
        (r.dataset_id, truth[(r.dataset_id, r.record_key)], r.person_id)
        for r in found
        if (r.dataset_id, r.record_key) in truth and not (r.no_linkage or r.aggregate_only)
    ]
    if not items:
        raise InvalidRequest("no stored record appears in the truth file")

    overall = _quality(items)
    by_pair: dict[str, Any] = {}
    datasets = sorted({d for d, _, _ in items})
    for a, b in itertools.combinations_with_replacement(datasets, 2):
        q = _quality(items, (a, b))
        if q.true_pairs or q.predicted_pairs:
            by_pair[f"{a}~{b}"] = q.__dict__
    clusters = _cluster_quality(items)
    return {
        "records_evaluated": len(items),
        "records_in_truth": len(truth),
        "pairwise": overall.__dict__,
        "precision": overall.precision,
        "recall": overall.recall,
        "f1": overall.f1,
        "cluster": clusters,
        "by_dataset_pair": by_pair,
    }


def _quality(items: list[tuple[str, str, str]], pair: tuple[str, str] | None = None) -> Quality:
    def counts(key_index: int) -> Counter[str]:
        return Counter(it[key_index] for it in items)

    if pair is None:
        tp = sum(_pairs(n) for n in Counter((t, p) for _, t, p in items).values())
        return Quality.of(
            tp, sum(map(_pairs, counts(1).values())), sum(map(_pairs, counts(2).values()))
        )
    a, b = pair

    def cross(groups: dict[Any, Counter[str]]) -> int:
        if a == b:
            return sum(_pairs(c[a]) for c in groups.values())
        return sum(c[a] * c[b] for c in groups.values())

    def grouped(key: Any) -> dict[Any, Counter[str]]:
        out: dict[Any, Counter[str]] = defaultdict(Counter)
        for it in items:
            out[key(it)][it[0]] += 1
        return out

    return Quality.of(
        cross(grouped(lambda it: (it[1], it[2]))),
        cross(grouped(lambda it: it[1])),
        cross(grouped(lambda it: it[2])),
    )


def _cluster_quality(items: list[tuple[str, str, str]]) -> dict[str, float | int]:
    """Exact-cluster metrics: a predicted cluster is right when it equals a true cluster."""
    true_sets: dict[str, set[int]] = defaultdict(set)
    pred_sets: dict[str, set[int]] = defaultdict(set)
    for i, (_, t, p) in enumerate(items):
        true_sets[t].add(i)
        pred_sets[p].add(i)
    truth = {frozenset(s) for s in true_sets.values()}
    pred = {frozenset(s) for s in pred_sets.values()}
    exact = len(truth & pred)
    # A person is split when their records carry more than one person id; a predicted person
    # is merged when it holds records of more than one true person. Splits weaken the DP
    # guarantee (a person split in k counts k times), so releases report this rate.
    pred_of = {i: p for i, (_, _, p) in enumerate(items)}
    true_of = {i: t for i, (_, t, _) in enumerate(items)}
    multi = sum(1 for s in true_sets.values() if len(s) > 1)
    split = sum(1 for s in true_sets.values() if len(s) > 1 and len({pred_of[i] for i in s}) > 1)
    merged = sum(1 for s in pred_sets.values() if len({true_of[i] for i in s}) > 1)
    precision = exact / len(pred) if pred else 1.0
    recall = exact / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "true_clusters": len(truth),
        "predicted_clusters": len(pred),
        "exact_matches": exact,
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
        "split_rate": round(split / multi, 6) if multi else 0.0,
        "merge_rate": round(merged / len(pred), 6) if pred else 0.0,
    }
