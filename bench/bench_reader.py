"""Throughput and peak memory of the extract reader on a large police-like CSV; prints JSON.

Run: ``.venv/bin/python bench/bench_reader.py [rows ...]`` (default 5000000, about 1.2 GB), or
``make bench``. Options: ``--chunk-rows N`` (default 500000), ``--source path|file|bytes``
(default path: the reader streams from disk; ``bytes`` reads the whole file into memory first,
as uploads used to be held), ``--dir D`` to write the CSV somewhere other than a temp dir.

For each size the CSV (25 columns, the police example's header, values as varied as a real
extract: unique ids, many names and addresses, timestamps to the minute) is written to disk in
batches, so the generator never holds it whole; then a fresh Python process reads it with
``open_extract(source).chunks(chunk_rows)``, counting rows and dropping each chunk, and
reports its peak resident memory (``ru_maxrss``, the whole process: interpreter, pandas and
pyarrow included; ``VmHWM`` as a cross-check) and the memory after imports, before reading.
The target is a peak under 1.5 GiB at five million rows with room for the rest of the
pipeline; the reader alone should stay under 600 MiB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

HERE = Path(__file__).resolve().parent

HEADER = [
    "victimization_id",
    "case_number",
    "incident_datetime",
    "victimization_type",
    "gunshot_injury",
    "fatal",
    "weapon_code",
    "location_description",
    "block_address",
    "latitude",
    "longitude",
    "community_area",
    "victim_first_name",
    "victim_middle_initial",
    "victim_last_name",
    "victim_dob",
    "victim_age",
    "victim_sex",
    "victim_race",
    "victim_home_address",
    "victim_home_zip",
    "juvenile_flag",
    "domestic_related",
    "officer_involved",
    "narrative",
]

FIRST = [
    "Marquise", "Jamal", "Aaliyah", "DeShawn", "Maria", "Luis", "Keisha", "Tyrone", "Ana",
    "Jose", "Imani", "Darnell", "Sofia", "Andre", "Latoya", "Carlos", "Brianna", "Malik",
    "Yesenia", "Terrell", "Jasmine", "Miguel", "Destiny", "Xavier", "Alondra", "Demetrius",
]  # fmt: skip
LAST = [
    "Whitfield", "Johnson", "Garcia", "Williams", "Martinez", "Brown", "Jones", "Rodriguez",
    "Davis", "Hernandez", "Washington", "Lopez", "Jackson", "Gonzalez", "Thomas", "Perez",
    "Robinson", "Sanchez", "Harris", "Ramirez", "Walker", "Torres", "Young", "Flores",
]  # fmt: skip
STREETS = [
    "W MADISON ST", "S HALSTED ST", "W CHICAGO AVE", "S ASHLAND AVE", "W NORTH AVE",
    "E 79TH ST", "S COTTAGE GROVE AVE", "W ROOSEVELT RD", "N PULASKI RD", "W 63RD ST",
]  # fmt: skip
TYPES = ["NON_FATAL_SHOOTING", "HOMICIDE", "AGGRAVATED_BATTERY", "ROBBERY", "ASSAULT"]
PLACES = ["STREET", "ALLEY", "SIDEWALK", "RESIDENCE", "PARKING LOT", "VEHICLE", "PARK"]
RACES = ["BLK", "WHT", "WWH", "API", "UNK"]
_BATCH = 200_000


def _pick(rng: np.random.Generator, pool: list[str], n: int) -> pa.Array:
    return pc.take(pa.array(pool, pa.string()), pa.array(rng.integers(0, len(pool), n)))


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _flag(rng: np.random.Generator, share: float, n: int, yes: str, no: str) -> pa.Array:
    return pc.if_else(pa.array(rng.random(n) < share), yes, no)


def police_batch(start: int, n: int, rng: np.random.Generator) -> pa.Table:
    """Rows ``start`` .. ``start + n - 1`` of the synthetic extract (built in pyarrow: fast)."""
    ids = np.arange(start, start + n)
    minutes = rng.integers(0, 365 * 24 * 60, n).astype("timedelta64[m]")
    when = pa.array(np.datetime64("2025-01-01T00:00", "s") + minutes)
    born = pa.array(np.datetime64("1950-01-01") + rng.integers(0, 70 * 365, n).astype("m8[D]"))
    first, last = _pick(rng, FIRST, n), _pick(rng, LAST, n)
    street = _pick(rng, STREETS, n)
    house = rng.integers(100, 12_000, n)
    age = rng.integers(10, 80, n)
    columns = {
        "victimization_id": _join("V2025-", pc.utf8_lpad(_text(ids), 8, "0")),
        "case_number": _join("JH", pc.utf8_lpad(_text(ids * 7 + 13), 8, "0")),
        "incident_datetime": pc.strftime(when, "%Y-%m-%dT%H:%M:%S"),
        "victimization_type": _pick(rng, TYPES, n),
        "gunshot_injury": _flag(rng, 0.6, n, "YES", "NO"),
        "fatal": _flag(rng, 0.15, n, "true", "false"),
        "weapon_code": _text(rng.integers(1, 40, n)),
        "location_description": _pick(rng, PLACES, n),
        "block_address": _join(pc.utf8_lpad(_text(house // 100), 3, "0"), "XX ", street),
        "latitude": _text(np.round(41.64 + rng.random(n) * 0.38, 5)),
        "longitude": _text(np.round(-87.94 + rng.random(n) * 0.42, 5)),
        "community_area": _text(rng.integers(1, 78, n)),
        "victim_first_name": first,
        "victim_middle_initial": pc.if_else(
            pa.array(rng.random(n) < 0.3), "", _pick(rng, list("ABCDEFGHJKLMNPRST"), n)
        ),
        "victim_last_name": last,
        "victim_dob": pc.strftime(born, "%Y-%m-%d"),
        "victim_age": _text(age),
        "victim_sex": _flag(rng, 0.8, n, "M", "F"),
        "victim_race": _pick(rng, RACES, n),
        "victim_home_address": _join(_text(house), " ", street),
        "victim_home_zip": _text(60601 + rng.integers(0, 60, n)),
        "juvenile_flag": pc.if_else(pa.array(age < 18), "true", "false"),
        "domestic_related": _flag(rng, 0.1, n, "true", "false"),
        "officer_involved": _flag(rng, 0.02, n, "true", "false"),
        "narrative": _join("Victim ", first, " ", last, " shot near ", street),
    }
    return pa.table([columns[name] for name in HEADER], names=HEADER)


def write_police_csv(path: Path, rows: int, *, seed: int = 7) -> int:
    """Write the synthetic extract batch by batch; returns its size in bytes."""
    rng = np.random.default_rng(seed)
    schema = pa.schema([(name, pa.string()) for name in HEADER])
    # pyarrow quotes the header whatever the quoting style; an agency export would not.
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with path.open("wb") as out:
        out.write((",".join(HEADER) + "\n").encode())
        with pacsv.CSVWriter(out, schema, write_options=options) as writer:
            for start in range(1, rows + 1, _BATCH):
                writer.write_table(police_batch(start, min(_BATCH, rows + 1 - start), rng))
    return path.stat().st_size


# --- the measurement, in a fresh process -----------------------------------------------------


def _peak_mib() -> dict[str, int]:
    """Peak resident memory of this process, two ways.

    ``ru_maxrss`` (KiB on Linux) is what the target is stated in; Linux carries it across
    ``exec`` from the process that forked, which is why every step runs in its own fresh
    process started by this small one. ``VmHWM`` is the same peak for this program only.
    """
    import resource

    peak = {"ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    peak["vm_hwm"] = int(line.split()[1]) // 1024
    except OSError:
        pass
    return peak


def read_here(path: Path, chunk_rows: int, source: str) -> dict[str, object]:
    """Read ``path`` in this process; the numbers ``bench`` reports for one run."""
    import resource

    sys.path.insert(0, str(HERE.parent))
    from hub.ingest.formats import open_extract

    idle = _peak_mib()["ru_maxrss"]
    start = time.perf_counter()
    handle = None
    if source == "bytes":
        extract = open_extract(path.read_bytes())
    elif source == "file":
        handle = path.open("rb")
        extract = open_extract(handle)
    else:
        extract = open_extract(path)
    opened = time.perf_counter() - start
    rows = chunks = 0
    for chunk in extract.chunks(chunk_rows):
        rows += len(chunk)
        chunks += 1
        del chunk  # hold no chunk while the reader builds the next
    seconds = time.perf_counter() - start
    if handle is not None:
        handle.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = _peak_mib()
    return {
        "rows": rows,
        "chunks": chunks,
        "encoding": extract.encoding,
        "open_s": round(opened, 2),
        "seconds": round(seconds, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "rows_per_s": int(rows / seconds),
        "mib_per_s": round(extract.size / seconds / 2**20, 1),
        "rss_after_imports_mib": idle,
        "peak_rss_mib": peak["ru_maxrss"],
        "peak_vm_hwm_mib": peak.get("vm_hwm"),
    }


def _child(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", type=int, default=[5_000_000])
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    parser.add_argument("--source", choices=["path", "file", "bytes"], default="path")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--write", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--read", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        print(write_police_csv(Path(args.write[0]), int(args.write[1])))
        return
    if args.read:
        path, chunk_rows, source = args.read
        print(json.dumps(read_here(Path(path), int(chunk_rows), source)))
        return
    out: dict[str, object] = {"columns": len(HEADER), "chunk_rows": args.chunk_rows}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for n in args.rows:
            path = Path(tmp) / f"police_{n}.csv"
            start = time.perf_counter()
            size = int(_child("--write", str(path), str(n)))
            written = time.perf_counter() - start
            result = json.loads(_child("--read", str(path), str(args.chunk_rows), args.source))
            out[str(n)] = {
                "file_mib": round(size / 2**20),
                "write_s": round(written, 1),
                "source": args.source,
                **result,
            }
            path.unlink()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
