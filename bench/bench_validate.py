"""Throughput of validate_extract on the police example extract (25 columns); prints JSON.

Run: ``.venv/bin/python bench/bench_validate.py [rows ...]`` (default 100000), or ``make bench``.
Times exclude the one-off great-expectations import and first run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests" / "validators"), str(HERE.parent)]

from validator_factories import make_example_dataset, make_police_frame  # noqa: E402

from validators import RecordKeyTracker, ValidationReport, compile_suite  # noqa: E402
from validators import validate_extract as validate  # noqa: E402


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(sizes: list[int]) -> None:
    dataset = make_example_dataset("police_victimizations")
    start = time.perf_counter()
    validate(dataset, make_police_frame(10))
    warmup = time.perf_counter() - start
    out: dict[str, object] = {
        "columns": len(dataset.fields),
        "expectations": len(compile_suite(dataset).expectations),
        "first_call_s": round(warmup, 2),
    }
    for n in sizes:
        frame = make_police_frame(n)
        whole = best_of(3, lambda frame=frame: validate(dataset, frame))

        def chunked(frame=frame, size=50_000) -> None:
            keys, report = RecordKeyTracker(), ValidationReport.empty(dataset.id)
            for offset in range(0, len(frame), size):
                part = frame.iloc[offset : offset + size]
                report = report.merge(validate(dataset, part, row_offset=offset, record_keys=keys))

        in_chunks = best_of(3, chunked)
        out[str(n)] = {
            "whole_s": round(whole, 3),
            "whole_rows_per_s": int(n / whole),
            "chunks_of_50k_s": round(in_chunks, 3),
            "chunks_of_50k_rows_per_s": int(n / in_chunks),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000])
