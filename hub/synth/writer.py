"""Write the extracts and the ground truth as CSV, and summarise what was written.

Files are UTF-8 (no BOM), comma-delimited, with a header row, ``csv`` module minimal quoting
and ``\\n`` line endings, so that the same rows always give the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contracts.model import Dataset
from hub.synth.schema import check_generated_columns, columns

TRUTH_FILE = "truth.csv"
TRUTH_COLUMNS = ("dataset", "record_id", "person_id")

Row = tuple[str, dict[str, str]]
"""``(person_id, values by column)``: one generated record and whose it is."""


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`hub.synth.generate` wrote.

    ``people`` is the size of the population; ``people_in_two_or_more`` counts the people with
    records in at least two of the four datasets (the linkage target). Every person gets at
    least one record by construction, so ``people_with_records`` equals ``people`` (the one
    exception: with a window of many years a CVI-only person may age past the agreement's 80
    and be left out); it is reported so that callers can check rather than assume it.
    """

    out_dir: Path
    seed: int
    window_start: dt.date
    window_end: dt.date
    people: int
    people_with_records: int
    people_in_two_or_more: int
    paths: Mapping[str, Path]
    """Dataset id → CSV path, in the order the datasets were written."""
    row_counts: Mapping[str, int]
    people_per_dataset: Mapping[str, int]
    truth_path: Path

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())


def write_extract(path: Path, dataset: Dataset, rows: list[Row]) -> None:
    """Write ``rows`` with exactly the contract's columns, in declared order."""
    header = columns(dataset)
    if rows:
        check_generated_columns(dataset, set(rows[0][1]))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([values.get(name, "") for name in header] for _, values in rows)


def write_truth(path: Path, entries: list[tuple[str, str, str]]) -> None:
    """``dataset,record_id,person_id`` for every record of every extract."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TRUTH_COLUMNS)
        writer.writerows(entries)
