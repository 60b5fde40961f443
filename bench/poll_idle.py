"""The polling fallback's idle CPU on a tree of many folders (issue 18, item 12: < 2% of a core at 20,000).

    .venv/bin/python bench/poll_idle.py                    # 20,000 folders of one file each, 60 s idle
    .venv/bin/python bench/poll_idle.py --folders 5000 --seconds 30

A real `rclone-jupyter start --no-jupyter` whose watcher is made to fall back to scanning
(RCLONE_JUPYTER_WATCH_LIMIT=1, as when the host's inotify watches run out), on a bucket folder of N folders
holding one small file each (put in `rclone serve s3`'s folder before it starts). After the start settled,
nothing changes for the given seconds: the daemon's own CPU (not rclone's) over that time is what scanning
costs. Then one file is written, and the time until it is in the bucket says how late a change arrives at
that pace. Nothing asserts: it prints a table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import FOLDER, Daemon, _cpu_seconds, code_version, load, table  # noqa: E402
from s3count import CountingS3  # noqa: E402


def one_tree(folders: int, seconds: float) -> list:
    load0 = load()
    with tempfile.TemporaryDirectory(prefix="rj-pollidle-") as tmp:
        tmp = Path(tmp)
        bucket = tmp / "s3" / "bucket" / FOLDER
        for i in range(folders):
            folder = bucket / f"d{i // 100:04d}" / f"s{i:06d}"
            folder.mkdir(parents=True)
            (folder / "a.txt").write_bytes(b"x")
        data = tmp / "data"
        with CountingS3(tmp / "s3") as s3:
            daemon = Daemon(tmp, s3, data, {"RCLONE_JUPYTER_WATCH_LIMIT": "1"})
            started = daemon.start()
            pid = daemon.proc.pid
            try:
                time.sleep(10)  # the first scans and the start's own work settle
                cpu0 = _cpu_seconds(pid)
                time.sleep(seconds)
                idle_cpu = _cpu_seconds(pid) - cpu0
                probe = data / "d0000" / "s000000" / "new.txt"
                probe.write_bytes(b"written while polling")
                t0 = time.monotonic()
                while not (bucket / "d0000" / "s000000" / "new.txt").exists():
                    if time.monotonic() - t0 > 600:
                        raise TimeoutError("the change never reached the bucket")
                    time.sleep(0.2)
                arrived = time.monotonic() - t0
            finally:
                code = daemon.stop()
    return [f"{folders:,}", f"{started:.1f}", f"{seconds:.0f}", f"{idle_cpu:.2f}",
            f"{idle_cpu / seconds * 100:.1f}%", f"{arrived:.1f}", code, f"{load0} -> {load()}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folders", default="20000", help="comma-separated numbers of folders")
    parser.add_argument("--seconds", type=float, default=60.0, help="idle time measured")
    args = parser.parse_args()
    print(code_version(), flush=True)
    rows = [one_tree(int(n), args.seconds) for n in args.folders.split(",")]
    table("The polling fallback, idle (RCLONE_JUPYTER_WATCH_LIMIT=1, rclone serve s3): the daemon's own CPU",
          ["folders", "start s", "idle s", "daemon CPU s", "of one core", "a new file in the bucket after s",
           "exit", "load"], rows)


if __name__ == "__main__":
    main()
