"""The daemon at scale (issue 18, item 12): memory per object, start time, and a reconcile with nothing changed.

`.venv/bin/python bench/scale.py [--sizes 100000,1000000] [--restore copy|none]` prints one row per size.
Goals: <= 300 bytes of daemon memory per object; a reconcile with nothing changed <= 5 s of CPU at 1,000,000;
a start dominated by the listing and the bytes.

What runs: the real `rclone-jupyter start --no-jupyter` against `rclone serve s3` on 127.0.0.1 (no counting
proxy: its Python would share the 2 cores), N files of 64 bytes in folders of 1,000 (`d000/f000000.txt`, 16
characters a name), written into the server's folder before it starts (it caches listings).

`--restore copy` (a fresh container): the data folder is empty, the start downloads every object (one GET
each). `--restore none`: the data folder already holds every file, hard links to the server's own files (same
size and mtime, made in seconds where 1,000,000 downloads would take most of an hour here): the start lists,
its `rclone copy --update` checks every object (one HEAD each, no byte moves) and copies nothing, and the
baseline is established by comparing the data folder with a listing (the files were not written by this
start); the baseline it ends with is the one a full restore leaves (every object known with its listed stamp).
Nothing writes into either folder while measured (checked: the file count and a sample of mtimes; the daemon's
own welcome.txt aside).

Figures:
- `RSS`: the daemon's resident memory 15 s after the status says `running`, minus that of the same daemon
  started over an empty bucket folder in the same run; `B/object` = that / N. `after reconciles`: the same
  after the reconciles below. `peak`: VmHWM (the start's peak).
- `start s`: from the process start until the status says `running`; `listing s` and `copy s`: plain rclone
  doing the same listing (`lsjson -R --fast-list`) and the same copy (the restore's flags) just before, the
  floor of what the start waits for; `own CPU s`: the daemon's Python process's user+system CPU until
  running (our own work), `rclone CPU s` that of its rclone children.
- `reconcile CPU s`: `rclone-jupyter sync --once` with nothing changed (one LIST-only listing compared with
  the baseline), the daemon's own CPU (user+system) during it, median of `--reconciles`; its rclone listing's
  CPU beside it, and the command's wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import (FOLDER, RCLONE, Daemon, _cpu_seconds, _rss_mib, code_version, load,  # noqa: E402
                   table)
from s3count import CountingS3  # noqa: E402

SETTLE = 15.0  # seconds between `running` and the RSS sample (the start's rclone runs end, memory is handed back)


def make_files(root: Path, n: int) -> None:
    """n files of 64 bytes in folders of 1,000; mtimes on whole milliseconds (what `serve s3` reports)."""
    base_ms = int((time.time() - 86400) * 1000)
    payload = os.urandom(56)
    for i in range(n):
        if i % 1000 == 0:
            folder = root / f"d{i // 1000:03d}"
            folder.mkdir(parents=True)
        path = os.path.join(folder, f"f{i:06d}.txt")
        with open(path, "wb") as f:
            f.write(i.to_bytes(8, "big") + payload)
        ns = (base_ms + i) * 1_000_000
        os.utime(path, ns=(ns, ns))


def link_files(src: Path, dst: Path) -> None:
    """The same files under dst as hard links (same inode: same size, content and mtime)."""
    for folder, _, names in os.walk(src):
        out = dst / os.path.relpath(folder, src)
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.link(os.path.join(folder, name), out / name)


def children_cpu(pid: int) -> float:
    """User+system CPU of the process's children that it has waited for (its rclone runs)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def timed_rclone(s3: CountingS3, *args: str) -> tuple[float, float]:
    """Plain rclone: (wall seconds, its user+system CPU seconds)."""
    before = os.times()
    started = time.monotonic()
    result = subprocess.run([RCLONE, *args], env=s3.rclone_env(direct=True), capture_output=True, text=True)
    wall = time.monotonic() - started
    after = os.times()
    if result.returncode != 0:
        raise RuntimeError(f"rclone {args[0]} failed ({result.returncode}): {result.stderr[-800:]}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def empty_daemon_mib(tmp: Path) -> float:
    """RSS of the daemon over an empty bucket folder, SETTLE s after running."""
    root = tmp / "empty"
    (root / "s3" / "bucket").mkdir(parents=True)
    with CountingS3(root / "s3") as s3:
        daemon = Daemon(root, s3, root / "data", {"AWS_ENDPOINT_URL": s3.direct_endpoint})
        daemon.start()
        try:
            time.sleep(SETTLE)
            return _rss_mib(daemon.proc.pid)[0]
        finally:
            daemon.stop()


def sample_mtimes(root: Path, n: int) -> list[int]:
    return [os.lstat(root / f"d{i // 1000:03d}" / f"f{i:06d}.txt").st_mtime_ns for i in range(0, n, max(1, n // 97))]


def measure(n: int, restore: str, reconciles: int, empty_mib: float, tmp: Path) -> list[str]:
    served = tmp / "s3" / "bucket" / FOLDER
    data = tmp / "data"
    t0 = time.monotonic()
    if not (served / f"d{(n - 1) // 1000:03d}" / f"f{n - 1:06d}.txt").exists():  # (--files: kept from a run)
        shutil.rmtree(tmp, ignore_errors=True)
        make_files(served, n)
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(tmp / "state", ignore_errors=True)
    print(f"[scale] {n:,} files made in {time.monotonic() - t0:.0f} s", flush=True)
    if restore == "none":
        link_files(served, data)
    before = sample_mtimes(served, n)
    with CountingS3(tmp / "s3") as s3:
        remote = f"bench:bucket/{FOLDER}"
        listing_s, _ = timed_rclone(s3, "lsjson", remote, "-R", "--files-only", "--no-mimetype", "--fast-list",
                                    "--use-server-modtime")
        copy_s = 0.0
        if restore == "none":  # the restore's own copy into the folder that holds everything: copies nothing
            copy_s, _ = timed_rclone(s3, "copy", remote, str(data), "--update", "--links", "--fast-list",
                                     "--transfers", "16", "--checkers", "16")
        else:  # a copy into another empty folder: the bytes' floor
            copy_s, _ = timed_rclone(s3, "copy", remote, str(tmp / "plain"), "--links", "--fast-list",
                                     "--transfers", "16", "--checkers", "16")
            shutil.rmtree(tmp / "plain")
        print(f"[scale] plain listing {listing_s:.1f} s, plain copy {copy_s:.1f} s; starting the daemon "
              f"(load {load()}) ...", flush=True)
        daemon = Daemon(tmp, s3, data, {"AWS_ENDPOINT_URL": s3.direct_endpoint})
        load0 = load()
        start_s = daemon.start(timeout=4 * 3600)
        try:
            pid = daemon.proc.pid
            own_cpu, rclone_cpu = _cpu_seconds(pid), children_cpu(pid)
            time.sleep(SETTLE)
            rss, peak = _rss_mib(pid)
            print(f"[scale] running after {start_s:.0f} s; RSS {rss:.0f} MiB; reconciling ...", flush=True)
            cpus, rclone_cpus, walls = [], [], []
            for _ in range(reconciles):
                cpu0, child0, wall0 = _cpu_seconds(pid), children_cpu(pid), time.monotonic()
                code = daemon.sync_once()
                walls.append(time.monotonic() - wall0)
                cpus.append(_cpu_seconds(pid) - cpu0)
                rclone_cpus.append(children_cpu(pid) - child0)
                if code != 0:
                    raise RuntimeError(f"sync --once exited {code}: {daemon.log_path.read_text()[-2000:]}")
            time.sleep(SETTLE)
            rss_after = _rss_mib(pid)[0]
            status = daemon.status()
        finally:
            code = daemon.stop()
    # (the daemon's welcome.txt at the top is its own, not one of the N)
    untouched = sample_mtimes(served, n) == before and sum(len(f) for d, _, f in os.walk(data) if d != str(data)) == n
    per = (rss - empty_mib) * 2**20 / n
    per_after = (rss_after - empty_mib) * 2**20 / n
    return [f"{n:,}", restore, f"{rss:.0f} - {empty_mib:.0f}", f"{per:.0f}", f"{per_after:.0f}", f"{peak:.0f}",
            f"{start_s:.0f}", f"{listing_s:.0f}", f"{copy_s:.0f}", f"{own_cpu:.0f}", f"{rclone_cpu:.0f}",
            f"{statistics.median(cpus):.1f} ({', '.join(f'{c:.1f}' for c in cpus)})",
            f"{statistics.median(rclone_cpus):.1f}", f"{statistics.median(walls):.1f}",
            f"{status.get('pending', '?')}, {'yes' if untouched else 'NO'}, exit {code}", f"{load0} -> {load()}"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="objects in the bucket folder")
    parser.add_argument("--restore", default="none", choices=("none", "copy"),
                        help="copy: into an empty data folder; none: the data folder holds every file already")
    parser.add_argument("--reconciles", type=int, default=3)
    parser.add_argument("--tmp", default=None, help="where the files go (default: the system's temporary folder)")
    parser.add_argument("--files", default=None,
                        help="a folder that keeps the bucket's files for the next run (made there if missing, "
                             "reused if there, never removed: remove it yourself); one size only")
    args = parser.parse_args(argv)
    print(f"rclone-jupyter scale ({code_version()}); rclone at {RCLONE}; {os.cpu_count()} CPUs; load {load()}",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rj-scale-", dir=args.tmp) as tmp:
        tmp = Path(tmp)
        empty_mib = empty_daemon_mib(tmp)
        for n in (int(s) for s in args.sizes.split(",")):
            run_dir = Path(args.files) if args.files else tmp / f"n{n}"
            try:
                rows.append(measure(n, args.restore, args.reconciles, empty_mib, run_dir))
            finally:
                if not args.files:
                    shutil.rmtree(run_dir, ignore_errors=True)
    table("The daemon at scale: memory per object, start, reconcile with nothing changed (bench/scale.py)",
          ["objects", "restore", "RSS MiB - empty", "B/object", "after reconciles", "peak MiB", "start s",
           "listing s", "copy s", "own CPU s", "rclone CPU s", "reconcile CPU s", "its rclone CPU s",
           "reconcile wall s", "pending, untouched, exit", "load"], rows)


if __name__ == "__main__":
    main()
