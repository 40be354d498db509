"""Linkage: give every record a pseudonymous person id, using keyed tokens only.

The engine here is *multi-pass deterministic* matching, the method many public-health
departments run: a pair of records is linked when they agree on every token family of any one
rule (see :data:`RULES`); links are closed transitively with union-find. Each rule tolerates one
kind of discrepancy (nickname, first-name typo, surname typo, swapped day/month, birth-date typo,
missing birth date), which a single composite token cannot (it finds under half the true links
on FEBRL4; see reference/libraries.md). The probabilistic engine (Splink) replaces the rules
behind the same ``run_linkage`` seam.

Agreements decide: records are compared across two datasets only when *both* agreements permit
linkage and name each other in ``link_with``; records under a no-linkage or aggregate-only row
rule, and records whose agreement is not in force, keep singleton person ids. A caveat stated
honestly: transitive closure can join A–C through B when A–B and B–C are each permitted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from hub import audit
from hub.agreements.service import check_in_force, current_versions
from hub.db.models import LinkageRun, PersonLink, Record, utcnow
from hub.errors import AgreementRefused
from hub.pseudonymize import TOKEN_COLUMNS

Families = dict[str, set[str]]

#: Each rule: token families that must all agree. Order does not matter (union-find).
RULES: tuple[tuple[str, ...], ...] = (
    ("fn", "ln", "dob"),
    ("fi", "ln", "dob"),
    ("fn", "lsx", "dob"),
    ("fsx", "lsx", "dob", "sex"),
    ("fn", "ln", "by"),
    ("fn", "ln", "md"),
    ("fn", "dob", "sex"),
    ("fn", "ln", "sex", "zip3"),
)
#: Records lacking a birth date join a name group only when the group's birth dates agree.
NO_DOB_RULE = ("fn", "ln")
METHOD = "deterministic-multipass-v1"


@dataclass(frozen=True)
class LinkageSummary:
    run_id: int
    method: str
    records: int
    linkable_records: int
    persons: int
    links: int
    dataset_pairs: list[list[str]]
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class UnionFind:
    def __init__(self, items: Iterable[int]) -> None:
        self.parent = {i: i for i in items}

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True


def permitted_pairs(session: Session, today: dt.date) -> tuple[set[str], set[frozenset[str]]]:
    """Datasets under an in-force agreement, and the dataset pairs both agreements permit."""
    in_force: dict[str, tuple[bool, set[str]]] = {}
    for gov in current_versions(session):
        try:
            check_in_force(gov, today, "linked", session)
        except AgreementRefused:
            continue
        link = gov.spec.linkage
        for ds in gov.spec.datasets:
            in_force[ds.id] = (link.permitted, set(link.link_with) - set(link.prohibited_with))
    pairs: set[frozenset[str]] = set()
    for a, b in itertools.combinations(sorted(in_force), 2):
        (pa, wa), (pb, wb) = in_force[a], in_force[b]
        if pa and pb and b in wa and a in wb:
            pairs.add(frozenset((a, b)))
    return set(in_force), pairs


def _rule_keys(fam: Families, rule: tuple[str, ...]) -> list[tuple[str, ...]]:
    sets = [sorted(fam.get(f, ())) for f in rule]
    if any(not s for s in sets):
        return []
    return list(itertools.product(*sets))


def cluster(
    families: dict[int, Families],
    dataset_of: dict[int, str],
    pairs: set[frozenset[str]],
) -> tuple[UnionFind, int]:
    """Union records that agree on any rule, comparing only within a dataset or across a
    permitted pair. Returns the union-find and the number of links that merged clusters."""
    uf = UnionFind(families)
    links = 0

    def join_group(members: list[int]) -> None:
        nonlocal links
        by_ds: dict[str, list[int]] = defaultdict(list)
        for m in members:
            by_ds[dataset_of[m]].append(m)
        for recs in by_ds.values():
            for other in recs[1:]:
                links += uf.union(recs[0], other)
        for a, b in itertools.combinations(sorted(by_ds), 2):
            if frozenset((a, b)) in pairs:
                links += uf.union(by_ds[a][0], by_ds[b][0])

    for rule in RULES:
        groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for rid, fam in families.items():
            for key in _rule_keys(fam, rule):
                groups[key].append(rid)
        for members in groups.values():
            if len(members) > 1:
                join_group(members)

    groups = defaultdict(list)
    for rid, fam in families.items():
        for key in _rule_keys(fam, NO_DOB_RULE):
            groups[key].append(rid)
    for members in groups.values():
        if len(members) < 2 or all("dob" in families[m] for m in members):
            continue
        dated = {uf.find(m) for m in members if "dob" in families[m]}
        if len(dated) <= 1:
            join_group(members)
    return uf, links


def person_id(members: Iterable[str]) -> str:
    """A stable pseudonymous id: a digest of the cluster's smallest (already keyed) record key."""
    return "p" + hashlib.sha256(min(members).encode()).hexdigest()[:23]


def run_linkage(session: Session, event_actor: str, today: dt.date | None = None) -> LinkageSummary:
    """Recompute person ids for every stored record. Caller commits."""
    started = utcnow()
    today = today or dt.date.today()
    in_force, pairs = permitted_pairs(session, today)
    run = LinkageRun(status="running", method=METHOD, params={"rules": [list(r) for r in RULES]})
    session.add(run)
    session.flush()

    columns = [getattr(Record, c) for c in TOKEN_COLUMNS]
    records = session.execute(
        select(
            Record.id,
            Record.dataset_id,
            Record.record_key,
            Record.no_linkage,
            Record.aggregate_only,
            *columns,
        )
    ).all()
    dataset_of = {r.id: r.dataset_id for r in records}
    key_of = {r.id: f"{r.dataset_id}|{r.record_key}" for r in records}
    families: dict[int, Families] = {}
    for r in records:
        if r.dataset_id not in in_force or r.no_linkage or r.aggregate_only:
            continue
        fam = families[r.id] = {}
        for column, token in zip(TOKEN_COLUMNS, r[5:], strict=True):
            if token is not None:
                fam.setdefault(TOKEN_COLUMNS[column], set()).add(str(token))
    uf, links = cluster(families, dataset_of, pairs)

    members: dict[int, list[str]] = defaultdict(list)
    for rid in families:
        members[uf.find(rid)].append(key_of[rid])
    pid_of_root = {root: person_id(keys) for root, keys in members.items()}
    session.execute(delete(PersonLink))
    rows = [
        {
            "record_id": r.id,
            "person_id": pid_of_root[uf.find(r.id)]
            if r.id in families
            else person_id([key_of[r.id]]),
            "run_id": run.id,
        }
        for r in records
    ]
    for start in range(0, len(rows), 10_000):
        session.execute(insert(PersonLink), rows[start : start + 10_000])
    persons = len(members) + (len(records) - len(families))
    run.status, run.records, run.persons, run.links = "finished", len(records), persons, links
    run.finished_at = utcnow()
    summary = LinkageSummary(
        run_id=run.id,
        method=METHOD,
        records=len(records),
        linkable_records=len(families),
        persons=persons,
        links=links,
        dataset_pairs=sorted(sorted(p) for p in pairs),
        seconds=round((run.finished_at - started).total_seconds(), 3),
    )
    audit.append(
        session,
        audit.Event(event_actor, "linkage.run", f"linkage_run:{run.id}", summary.to_dict()),
    )
    return summary
