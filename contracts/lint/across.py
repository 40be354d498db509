"""Rules across agreements, for when several files are linted together.

Within one file, ``link_with`` may name datasets of other agreements, so only the set can say
whether those exist and agree. The set linted together is taken as the whole world: lint every
agreement the hub will hold in one run (``ovphub agreements lint contracts/agreements/*.yaml``).

Findings are ``(position, yaml_path, sentence)``, where ``position`` is the agreement's place
in the list given, so the caller can name its file and line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

from contracts.lint import measures
from contracts.lint.base import Subject

CrossFinding = tuple[int, str, str]


def _has(s: Subject, *sections: str) -> bool:
    return all(name in s.parsed for name in sections)


def check_versions(subjects: Sequence[Subject]) -> Iterator[CrossFinding]:
    seen: dict[tuple[str, str], int] = {}
    for n, s in enumerate(subjects):
        if not _has(s, "agreement"):
            continue
        key = (s.agreement.id, s.agreement.version)
        if key in seen:
            yield (
                n,
                "agreement.version",
                f"{s.agreement.ref} is also defined in another file; versions are immutable, "
                "so give this one a new version number",
            )
        else:
            seen[key] = n


def _owners(subjects: Sequence[Subject]) -> dict[str, set[int]]:
    """Each dataset id, with the positions of the agreements that declare it."""
    owners: dict[str, set[int]] = defaultdict(set)
    for n, s in enumerate(subjects):
        if _has(s, "datasets"):
            for ds in s.agreement.datasets:
                owners[ds.id].add(n)
    return owners


def check_dataset_owners(subjects: Sequence[Subject]) -> Iterator[CrossFinding]:
    owners = _owners(subjects)
    for n, s in enumerate(subjects):
        if not _has(s, "datasets", "agreement"):
            continue
        for i, ds in enumerate(s.agreement.datasets):
            others = sorted(
                {
                    subjects[m].agreement.id
                    for m in owners[ds.id]
                    if m != n and _has(subjects[m], "agreement")
                }
                - {s.agreement.id}
            )
            if others:
                yield (
                    n,
                    f"datasets[{i}].id",
                    f"dataset {ds.id} is also declared by {', '.join(others)}; a dataset "
                    "belongs to one agreement, so rename one of them",
                )


def check_link_with(subjects: Sequence[Subject]) -> Iterator[CrossFinding]:
    """Every name in link_with exists, names this agreement back, and is not prohibited there."""
    owners = _owners(subjects)
    for n, s in enumerate(subjects):
        if not _has(s, "linkage", "datasets"):
            continue
        mine = {ds.id for ds in s.agreement.datasets}
        for k, name in enumerate(s.agreement.linkage.link_with):
            at = f"linkage.link_with[{k}]"
            if name not in owners:
                yield (
                    n,
                    at,
                    f"{name} is not a dataset of any agreement linted with this one; check "
                    "the name, or lint the agreement that declares it together with this one",
                )
                continue
            for m in sorted(owners[name]):
                other = subjects[m]
                if not _has(other, "linkage", "agreement"):
                    continue
                link = other.agreement.linkage
                forbidden = sorted(mine & set(link.prohibited_with))
                if forbidden:
                    yield (
                        n,
                        at,
                        f"{other.agreement.id} prohibits linking {name} with "
                        f"{', '.join(forbidden)}; remove {name} from link_with",
                    )
                elif not link.permitted or not mine & set(link.link_with):
                    yield (
                        n,
                        at,
                        f"{name} is linked only when both agreements name each other, and "
                        f"{other.agreement.id} does not permit linkage with "
                        f"{' or '.join(sorted(mine))}; add it there or remove {name} here",
                    )


def check_linked_events(subjects: Sequence[Subject]) -> Iterator[CrossFinding]:
    """A rate's condition on a linked dataset of another agreement reads fields that dataset
    has, kept to the day and with the values it allows. (An unknown dataset is reported at
    link_with, which requires_linkage must be in.)"""
    owners = _owners(subjects)
    for n, s in enumerate(subjects):
        if not _has(s, "outputs", "datasets"):
            continue
        mine = {ds.id for ds in s.agreement.datasets}
        for i, g in enumerate(s.agreement.outputs.aggregates):
            for event in g.linked_events:
                if event.dataset in mine:
                    continue  # structure.check_outputs checks it
                for m in sorted(owners.get(event.dataset, ())):
                    other = subjects[m]
                    ds = other.agreement.dataset(event.dataset)
                    if ds is None:
                        continue
                    owner = other.agreement.id if _has(other, "agreement") else ""
                    at = f"outputs.aggregates[{i}].numerator.linked"
                    for path, message in measures.check_linked_fields(other, ds, event, at, owner):
                        yield n, path, message


def check_party_names(subjects: Sequence[Subject]) -> Iterator[CrossFinding]:
    names: dict[str, tuple[str, int]] = {}
    for n, s in enumerate(subjects):
        if not _has(s, "parties"):
            continue
        for i, p in enumerate(s.agreement.parties):
            first = names.setdefault(p.id, (p.legal_name, n))
            if first[0] != p.legal_name:
                yield (
                    n,
                    f"parties[{i}].legal_name",
                    f"{p.id} is called {first[0]!r} in another agreement; use one legal name "
                    "for a party everywhere",
                )


CROSS_CHECKS = (
    check_versions,
    check_dataset_owners,
    check_link_with,
    check_linked_events,
    check_party_names,
)


def lint_across(subjects: Sequence[Subject]) -> list[CrossFinding]:
    return [finding for check in CROSS_CHECKS for finding in check(subjects)]
