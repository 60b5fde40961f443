"""Where the daemon's memory per object goes: the engine's per-object structures, measured with tracemalloc.

    .venv/bin/python bench/memory_per_object.py [--objects 100000]

Builds, for N objects named like a real tree (`dNNN/fNNNNNN.txt`), the structures the engine keeps per object
after a start (model/baseline.py's `Baseline`, packed; the restore's listing and what the restore wrote) and
the structures a reconcile builds for a moment (the listing read from rclone's CSV lines into versions by
name; beside it, what lsjson's JSON cost before), and prints the bytes per object of each. The whole daemon's
RSS per object is measured by `bench/scale.py`. Goal (issue 18): <= 300 bytes of daemon memory per object.
Nothing asserts.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rclone_jupyter.model.baseline import Baseline  # noqa: E402
from rclone_jupyter.model.known import Known, Version, entry_version  # noqa: E402
from rclone_jupyter.rclone.listing import read_listing  # noqa: E402


def measure(build):
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return kept, after - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=100_000)
    n = parser.parse_args().objects
    base = int(time.time() * 1e9)
    names = [f"d{i // 1000:03d}/f{i:06d}.txt" for i in range(n)]
    listing_text = json.dumps([{"Path": name, "Size": 4096, "ModTime": "2026-12-01T10:00:00.123456789Z",
                                "IsDir": False} for name in names])
    rows = []
    _, cost = measure(lambda: [f"d{i // 1000:03d}/f{i:06d}.txt" for i in range(n)])
    rows.append(("the names alone (str)", cost))
    entries, cost = measure(lambda: json.loads(listing_text))
    rows.append(("before: lsjson's listing as parsed JSON (list of dicts), held with its text", cost))
    _, cost = measure(lambda: {e["Path"]: entry_version(e) for e in entries})
    rows.append(("its versions by name {name: (size, mtime_ns)}: the restore's listing, a reconcile's", cost))
    del entries
    csv_lines = [f"{name},4096,{base + i}\n" for i, name in enumerate(names)]
    _, cost = measure(lambda: read_listing(iter(csv_lines)))
    rows.append(("now: the same read from lsf's CSV lines as they come (names included)", cost))
    _, cost = measure(lambda: {name: Known(4096, base + i, (4096, base + i)) for i, name in enumerate(names)})
    rows.append(("before: known {name: Known(size, mtime_ns, listed)} (names shared)", cost))

    def packed() -> Baseline:
        baseline = Baseline()
        for i, name in enumerate(names):
            baseline.record(name, Version(4096, base + i), Version(4096, base + i))
        return baseline
    _, cost = measure(packed)
    rows.append(("now: the Baseline, 32 packed bytes an object (names shared)", cost))
    _, cost = measure(lambda: {name: (4096, base + i) for i, name in enumerate(names)})
    rows.append(("one {name: (size, mtime_ns)} more: what the restore wrote, a walk of the data folder", cost))
    print(f"\n## Memory per object of the engine's structures, N = {n:,} (tracemalloc)\n")
    print("| structure | bytes per object |")
    print("|---|---|")
    for what, cost in rows:
        print(f"| {what} | {cost / n:.0f} |")


if __name__ == "__main__":
    main()
