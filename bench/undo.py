"""What undo (issue 19) costs: requests per changed file with and without keeping, the steady state of a file
saved again and again, an `rm -rf` and its recovery, and S3's own bucket versioning for comparison.

Run `python bench/undo.py --help`. A real `rclone-jupyter start --no-jupyter` on a local S3 server behind the
counting proxy (s3count.py); every count is the daemon's (or the command's) own requests. Prints tables,
asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import CLI, FOLDER, Daemon, code_version, fmt_counts, load, table, total  # noqa: E402
from s3count import KINDS, RCLONE, SERVERS, CountingS3  # noqa: E402

TRASH = ".rclone-jupyter/trash"


def bucket_sizes(s3: CountingS3, prefix: str = "") -> dict[str, int]:
    """{name: size} under the bucket folder (trash and heartbeats included), through the uncounted endpoint."""
    run = subprocess.run([RCLONE, "lsjson", "-R", "--files-only", "--no-mimetype", "--fast-list",
                          f"bench:bucket/{FOLDER}/{prefix}"], env=s3.rclone_env(direct=True), capture_output=True,
                         text=True)
    return {e["Path"]: e["Size"] for e in json.loads(run.stdout or "[]")} if run.returncode == 0 else {}


def wait_synced(daemon: Daemon, before: str | None, timeout: float = 300) -> None:
    """Wait until the daemon reports a sync after `before` (the remote's last_sync) and nothing pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        remote = next(iter((daemon.status().get("remotes") or {}).values()), {})
        if remote.get("last_sync") not in (None, before) and remote.get("pending") == 0:
            return
        time.sleep(0.01)
    raise TimeoutError("the daemon never reported the change synced")


def last_sync(daemon: Daemon) -> str | None:
    return next(iter((daemon.status().get("remotes") or {}).values()), {}).get("last_sync")


def step(daemon: Daemon, s3: CountingS3, action) -> dict[str, int]:
    """Requests the daemon makes for one change: `action()` changes the data folder."""
    time.sleep(0.4)  # past the quiet period of the last change, so this one is a push of its own
    before = last_sync(daemon)
    s3.counter.reset()
    action()
    wait_synced(daemon, before)
    return s3.counter.snapshot()


def env_for(keep_days: str, keep_every: str = "600") -> dict[str, str]:
    return {"RCLONE_JUPYTER_KEEP_DAYS": keep_days, "RCLONE_JUPYTER_KEEP_EVERY": keep_every,
            "RCLONE_JUPYTER_HEARTBEAT_INTERVAL": "0", "RCLONE_JUPYTER_RECONCILE_INTERVAL": "0",
            "RCLONE_JUPYTER_QUIET_PERIOD": "0.2", "RCLONE_JUPYTER_MAX_DELAY": "2"}


# -- 1. one changed file -------------------------------------------------------------------------------------

def bench_per_change(servers: list[str]) -> None:
    rows = []
    load0 = load()
    for kind in servers:
        for keep_days in ("7", "0"):
            with tempfile.TemporaryDirectory(prefix="rj-undo-") as tmp, SERVERS[kind](Path(tmp) / "s3") as s3:
                tmp = Path(tmp)
                data = tmp / "data"
                daemon = Daemon(tmp, s3, data, env_for(keep_days))
                daemon.start()
                try:
                    target = data / "results.csv"
                    new = step(daemon, s3, lambda: target.write_bytes(b"0" * 50_000))
                    kept = step(daemon, s3, lambda: target.write_bytes(b"1" * 50_000))
                    within = step(daemon, s3, lambda: target.write_bytes(b"2" * 50_000))
                    deleted = step(daemon, s3, target.unlink)
                finally:
                    daemon.stop()
            label = "keep 7 days" if keep_days != "0" else "off (KEEP_DAYS=0)"
            for what, counts in (("new file", new), ("overwrite, first in KEEP_EVERY", kept),
                                 ("overwrite within KEEP_EVERY", within), ("delete", deleted)):
                rows.append([kind, label, what, fmt_counts(counts), total(counts)])
    table(f"Requests per changed file, keeping on and off ({code_version()}; load {load0} -> {load()})",
          ["server", "keeping", "change", "requests", "total"], rows)


# -- 2. the steady state: one file saved again and again ------------------------------------------------------

def bench_steady(kind: str, saves: int, every: float, keep_every: float) -> None:
    """A file saved every `every` s with KEEP_EVERY `keep_every` s: the ratio of JupyterLab's autosave (120 s)
    to the default KEEP_EVERY (600 s) at a scale a benchmark can wait for."""
    load0 = load()
    with tempfile.TemporaryDirectory(prefix="rj-undo-") as tmp, SERVERS[kind](Path(tmp) / "s3") as s3:
        tmp = Path(tmp)
        data = tmp / "data"
        daemon = Daemon(tmp, s3, data, env_for("7", f"{keep_every:g}"))
        daemon.start()
        try:
            target = data / "notebook.ipynb"
            before = last_sync(daemon)
            target.write_bytes(b"{}" * 10_000)
            wait_synced(daemon, before)
            s3.counter.reset()
            started = time.monotonic()
            for n in range(saves):
                before = last_sync(daemon)
                target.write_bytes(f"{n:08d}".encode() * 2_500)
                wait_synced(daemon, before)
                time.sleep(max(0.0, started + (n + 1) * every - time.monotonic()))
            counts = s3.counter.snapshot()
            kept = sum(1 for name in bucket_sizes(s3, TRASH))
        finally:
            daemon.stop()
    table(f"One file saved {saves} times, every {every:g} s, KEEP_EVERY {keep_every:g} s ({kind}; load {load0} -> "
          f"{load()})", ["versions kept", "requests per save", "total per save", "goal"],
          [[kept, fmt_counts(counts, saves), f"{total(counts) / saves:.2f}", "<= 3"]])


# -- 3. rm -rf of a folder, and its recovery ------------------------------------------------------------------

def bench_rm_rf(kind: str, files: int) -> None:
    load0 = load()
    rows = []
    for keep_days in ("7", "0"):
        with tempfile.TemporaryDirectory(prefix="rj-undo-") as tmp, SERVERS[kind](Path(tmp) / "s3") as s3:
            tmp = Path(tmp)
            data = tmp / "data"
            daemon = Daemon(tmp, s3, data, env_for(keep_days))
            daemon.start()
            try:
                def write():
                    for i in range(files):
                        path = data / "project" / f"d{i % 10}" / f"f{i:04d}.txt"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(f"file {i}\n".encode() * 100)
                step(daemon, s3, write)
                started = time.monotonic()
                removed = step(daemon, s3, lambda: subprocess.run(["rm", "-rf", str(data / "project")], check=True))
                rm_seconds = time.monotonic() - started
                row = [kind, "keep 7 days" if keep_days != "0" else "off", files, fmt_counts(removed, files),
                       f"{total(removed) / files:.2f}", f"{rm_seconds:.1f}"]
                if keep_days != "0":
                    s3.counter.reset()
                    started = time.monotonic()
                    history = subprocess.run([CLI, "history", "project", "--json"], env=daemon.env,
                                             capture_output=True, text=True)
                    listed = s3.counter.snapshot()
                    s3.counter.reset()
                    before = last_sync(daemon)
                    t0 = time.monotonic()
                    result = subprocess.run([CLI, "recover", "project"], env=daemon.env, capture_output=True,
                                            text=True)
                    recover_seconds = time.monotonic() - t0
                    recovered = s3.counter.snapshot()
                    wait_synced(daemon, before)
                    saved_again = s3.counter.snapshot()
                    row += [f"{len(json.loads(history.stdout or '[]'))} listed with {fmt_counts(listed)}",
                            f"{'ok' if result.returncode == 0 else 'FAILED'} in {recover_seconds:.1f} s: "
                            f"{fmt_counts(recovered)}; saved again: {total(saved_again) - total(recovered)} requests"]
                else:
                    row += ["-", "-"]
                rows.append(row)
            finally:
                daemon.stop()
    table(f"rm -rf of a {files}-file folder and `recover project` ({kind}; load {load0} -> {load()})",
          ["server", "keeping", "files", "rm -rf: requests per file", "total per file", "rm -rf to durable s",
           "history", "recover"], rows)


# -- 4. S3's own bucket versioning (moto), for comparison -----------------------------------------------------

def bench_versioning(files: int) -> None:
    load0 = load()
    with tempfile.TemporaryDirectory(prefix="rj-undo-") as tmp, SERVERS["moto"](Path(tmp) / "s3") as s3:
        tmp = Path(tmp)
        conn = http.client.HTTPConnection("127.0.0.1", s3.upstream_port, timeout=30)
        conn.request("PUT", f"/{s3.bucket}?versioning", body=b'<VersioningConfiguration xmlns="http://s3.amazonaws'
                     b'.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>')
        conn.getresponse().read()
        data = tmp / "data"
        daemon = Daemon(tmp, s3, data, env_for("0"))  # our trash off: the bucket keeps every version
        daemon.start()
        try:
            target = data / "results.csv"
            step(daemon, s3, lambda: target.write_bytes(b"0" * 50_000))
            overwrite = step(daemon, s3, lambda: target.write_bytes(b"1" * 50_000))
            delete = step(daemon, s3, target.unlink)

            def write():
                for i in range(files):
                    path = data / "project" / f"f{i:04d}.txt"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(f"file {i}\n".encode() * 100)
            step(daemon, s3, write)
            time.sleep(1.1)
            before_rm = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            time.sleep(1.1)
            removed = step(daemon, s3, lambda: subprocess.run(["rm", "-rf", str(data / "project")], check=True))
        finally:
            daemon.stop()
        s3.counter.reset()
        listing = subprocess.run([RCLONE, "lsjson", "-R", "--s3-versions", "--s3-version-deleted",
                                  "--use-server-modtime", "--no-mimetype", f"bench:bucket/{FOLDER}/"],
                                 env=s3.rclone_env(), capture_output=True, text=True)
        listed = s3.counter.snapshot()
        s3.counter.reset()
        started = time.monotonic()
        back = subprocess.run([RCLONE, "copy", f"bench,version_at='{before_rm}':bucket/{FOLDER}/project/",
                               f"bench:bucket/{FOLDER}/project/"], env=s3.rclone_env(), capture_output=True, text=True)
        recover_seconds = time.monotonic() - started
        recovered = s3.counter.snapshot()
    versions = len(json.loads(listing.stdout or "[]"))
    table(f"S3 bucket versioning on (moto), our trash off ({code_version()}; load {load0} -> {load()})",
          ["what", "requests", "total"],
          [["overwrite", fmt_counts(overwrite), total(overwrite)],
           ["delete", fmt_counts(delete), total(delete)],
           [f"rm -rf of {files} files", fmt_counts(removed, files) + " per file", f"{total(removed) / files:.2f}"],
           [f"list every version (--s3-versions --s3-version-deleted: {versions} entries)", fmt_counts(listed),
            total(listed)],
           [f"recover the folder as it was (copy from --s3-version-at): {'ok' if back.returncode == 0 else 'FAILED'} "
            f"in {recover_seconds:.1f} s, not server-side", fmt_counts(recovered), total(recovered)]])


def main(argv: list[str] | None = None) -> None:
    every = ["per-change", "steady", "rm-rf", "versioning"]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="*", default=every, choices=every, help="benchmarks to run (default: all)")
    parser.add_argument("--servers", default="rclone,moto", help="S3 servers for per-change")
    parser.add_argument("--server", default="moto", choices=sorted(SERVERS), help="S3 server for steady and rm-rf")
    parser.add_argument("--saves", type=int, default=25, help="saves in steady")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between saves in steady")
    parser.add_argument("--keep-every", type=float, default=2.5, help="KEEP_EVERY in steady (5x --every, as "
                                                                      "600 s is 5x JupyterLab's 120 s autosave)")
    parser.add_argument("--files", type=int, default=500, help="files in rm-rf and versioning")
    args = parser.parse_args(argv)
    print(code_version(), flush=True)
    for what in args.what:
        if what == "per-change":
            bench_per_change(args.servers.split(","))
        elif what == "steady":
            bench_steady(args.server, args.saves, args.every, args.keep_every)
        elif what == "rm-rf":
            bench_rm_rf(args.server, args.files)
        else:
            bench_versioning(args.files)


if __name__ == "__main__":
    main()
