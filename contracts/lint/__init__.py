"""Rules an agreement must satisfy beyond its shape. Each check yields ``(yaml_path, sentence)``.

The sentence says what is wrong and what to change, in words legal staff use. Checks are plain
functions over the parsed model; :func:`lint_agreement` runs them all and never stops at the
first. They are grouped by kind:

* ``structure`` — the agreement's own consistency (dates, references, budgets, purposes,
  consent, amendments, signatories, identifiers and free text);
* ``law`` — rules a regime imposes, switched on by regime flags and legal bases (VAWA/VOCA,
  42 CFR Part 2, FERPA, CJIS, juvenile records, HIPAA);
* ``across`` — rules over several agreements linted together (datasets named in link_with
  exist and name this agreement back, one owner per dataset, one legal name per party, a
  rate's condition on a linked dataset reads fields that dataset has).

``measures`` holds what both check about the fields an aggregate reads (filters, the value of a
sum or mean, the numerator of a rate).

``contracts.loader`` turns findings into problems with file and line, and lints what parsed
of a document that has structural errors too (see :class:`~contracts.lint.base.Subject`).
"""

from __future__ import annotations

from contracts.lint import law, structure
from contracts.lint.across import CrossFinding, lint_across
from contracts.lint.base import Finding, Rule, Subject
from contracts.model import Agreement

RULES: tuple[Rule, ...] = (
    structure.check_dates,
    structure.check_parties,
    structure.check_signatories,
    structure.check_datasets,
    structure.check_dataset_checks,
    structure.check_outputs,
    structure.check_aggregate_linkage,
    structure.check_linkage,
    structure.check_purposes,
    structure.check_consent,
    structure.check_retention,
    structure.check_incidents,
    structure.check_amendments,
    structure.check_approvals,
    law.check_vawa,
    law.check_part2,
    law.check_ferpa,
    law.check_cjis,
    law.check_cjis_profile,
    law.check_juvenile,
    law.check_hipaa,
)


def lint_subject(subject: Subject) -> list[Finding]:
    """Run every rule whose sections parsed."""
    return [finding for r in RULES if r.applies(subject) for finding in r(subject)]


def lint_agreement(a: Agreement) -> list[Finding]:
    """Every problem of a fully parsed agreement."""
    return lint_subject(Subject(a))


__all__ = [
    "RULES",
    "CrossFinding",
    "Finding",
    "Rule",
    "Subject",
    "lint_across",
    "lint_agreement",
    "lint_subject",
]
