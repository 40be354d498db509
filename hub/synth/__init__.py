"""Synthetic partner extracts for demos and tests: ``generate(out_dir, people, seed)``.

One population of violence-involved people, seen by four agencies — police victimizations, ED
injury visits, CVI enrollments and program referrals — each writing names, birth dates and
addresses its own way (nicknames, typos, missing or swapped birth dates, moved addresses, double
surnames, accents, suffixes). ``truth.csv`` maps every record to its true person, so linkage can
be scored. Columns and allowed values follow the example agreements in ``contracts/agreements``.

Modules: ``population`` (true identities, window, calendar), ``discrepancies`` (how an agency
writes an identity down), ``police`` / ``hospital`` / ``cvi`` / ``referrals`` (events and rows),
``schema`` (contracts and value formats), ``writer`` (CSV and summary), ``generator``.

Everything here is fictional. Names come from small hand-written lists of common names in
``hub/synth/data``; any resemblance to a real person is coincidence.
"""

from hub.synth.generator import generate
from hub.synth.schema import DATASET_IDS, SynthContractError
from hub.synth.writer import TRUTH_FILE, SynthSummary

__all__ = ["DATASET_IDS", "TRUTH_FILE", "SynthContractError", "SynthSummary", "generate"]
