"""The watcher's own CPU for a burst of new files (local/watcher.py alone: no syncer, no upload).

    .venv/bin/python bench/watch_cpu.py                 # 100,000 new files
    .venv/bin/python bench/watch_cpu.py --files 10000

A Watcher on an empty temporary folder with a sink that only records what it is told; a child process writes
N new 64-byte files (folders of 1,000) as fast as it can. Printed: this process's CPU (user / system) from the
first write until the watcher has told every file and then nothing for 1 s, each thread's, and how many paths
were told (a file written at once is told once: bench/burst_cpu.py measures the whole daemon). Nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rclone_jupyter.local.watcher import Watcher  # noqa: E402

WRITER = """
import sys
from pathlib import Path
data, n = Path(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    folder = data / f"u{i // 1000:03d}"
    if i % 1000 == 0:
        folder.mkdir()
    (folder / f"f{i:06d}.txt").write_bytes(i.to_bytes(8, "big") * 8)
"""


def thread_cpu() -> dict[str, tuple[float, float]]:
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[thread.name] = (int(fields[11]) / tick, int(fields[12]) / tick)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    n = parser.parse_args().files
    told: dict[str, bool] = {}
    calls = [0]

    def sink(rel: str, finished: bool) -> None:
        calls[0] += 1
        told[rel] = finished

    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="rj-watchcpu-") as tmp:
        watcher = Watcher(Path(tmp), sink)
        watcher.start()
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        subprocess.run([sys.executable, "-c", WRITER, tmp, str(n)], check=True)
        written = time.monotonic() - started
        while len(told) < n + (n + 999) // 1000:  # every file and every folder
            time.sleep(0.2)
        last = -1
        while last != calls[0]:  # then nothing for 1 s
            last = calls[0]
            time.sleep(1)
        after = resource.getrusage(resource.RUSAGE_SELF)
        threads = thread_cpu()
        watcher.stop()
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    print("| new files | written in s | watcher CPU s (user / system) | paths told | load |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| {n:,} | {written:.1f} | {user + system:.2f} ({user:.2f} / {system:.2f}) | {calls[0]:,} | "
          f"{load0:.1f} -> {os.getloadavg()[0]:.1f} |")
    print("\nper thread (user / system s, since the watcher started): "
          + ", ".join(f"{name} {u:.2f} / {s:.2f}" for name, (u, s) in threads.items() if u + s > 0))


if __name__ == "__main__":
    main()
