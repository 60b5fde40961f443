"""Benchmarks of rclone-jupyter against plain rclone, on a local S3 server that counts requests.

Run `python bench/bench.py --help`; bench/README.md explains each table. Every figure is measured in the same
run as the plain-rclone figure it is compared with. Nothing here asserts: it prints tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from s3count import KINDS, RCLONE, CountingS3  # noqa: E402

VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "rclone-jupyter")
FOLDER = "bench"
SMALL = 4096  # bytes in a "small file"


# -- fixtures ------------------------------------------------------------------------------------------


def make_tree(root: Path, n: int, size: int = SMALL) -> list[str]:
    """n files of `size` bytes in folders of 1,000; modtimes on whole milliseconds (what S3 metadata keeps)."""
    block = os.urandom(size)
    rels = []
    base_ms = int((time.time() - 86400) * 1000)
    for i in range(n):
        rel = f"d{i // 1000:03d}/f{i:06d}.txt"
        path = root / rel
        if i % 1000 == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(i.to_bytes(8, "big") + block[8:])
        ns = (base_ms + i) * 1_000_000
        os.utime(path, ns=(ns, ns))
        rels.append(rel)
    return rels


def seed_bucket(local: Path, s3_root: Path, folder: str = FOLDER) -> None:
    """Make the bucket folder hold the same files (written into the server's folder before it starts)."""
    shutil.copytree(local, s3_root / "bucket" / folder, copy_function=shutil.copy2)


def change(path: Path, tag: int) -> bytes:
    """Rewrite a file with new content of the same size; return the content."""
    data = path.read_bytes()
    new = f"{tag:016d}{time.monotonic_ns():020d}".encode() + data[36:]
    path.write_bytes(new)
    return new


def make_engine(s3: CountingS3, data: Path, state: Path, folder: str = FOLDER, direct: bool = False):
    """An Engine exactly as `rclone-jupyter start` builds it."""
    from rclone_jupyter import settings as settings_mod
    from rclone_jupyter.supervisor import make_engines, prepare

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(s3.env(folder, direct=direct), RCLONE_JUPYTER_DATA_DIR=str(data), RCLONE_JUPYTER_STATE_DIR=str(state))
    settings = settings_mod.load(env)
    state_dir, binary = prepare(settings, env)
    return make_engines(settings, state_dir, binary, env)[0]


def measure(s3: CountingS3 | None, fn) -> tuple[float, dict[str, int]]:
    if s3 is not None:
        s3.counter.reset()
    started = time.monotonic()
    fn()
    elapsed = time.monotonic() - started
    return elapsed, (s3.counter.snapshot() if s3 is not None else {})


def rclone(s3: CountingS3, *args: str, direct: bool = False) -> None:
    result = subprocess.run([RCLONE, *args], env=s3.rclone_env(direct=direct), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"rclone {args[0]} failed ({result.returncode}): {result.stderr[-800:]}")


# -- printing ------------------------------------------------------------------------------------------


def fmt_counts(counts: dict[str, int], per: int = 1) -> str:
    parts = [f"{counts[k] / per:g} {k}" for k in KINDS if counts.get(k)]
    return ", ".join(parts) or "none"


def total(counts: dict[str, int]) -> int:
    return sum(counts.values())


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    sys.stdout.flush()


def median_counts(samples: list[dict[str, int]]) -> dict[str, int]:
    return {k: int(statistics.median(s.get(k, 0) for s in samples)) for k in KINDS}


# -- 1. one changed file -------------------------------------------------------------------------------


def bench_push(sizes: list[int], repeat: int, bisync_runs: int) -> None:
    rows, rec_rows = [], []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix=f"rj-push-{n}-") as tmp:
            tmp = Path(tmp)
            data = tmp / "data"
            print(f"[push] N={n}: creating {n} files ...", flush=True)
            rels = make_tree(data, n)
            seed_bucket(data, tmp / "s3")
            with CountingS3(tmp / "s3") as s3:
                engine = make_engine(s3, data, tmp / "state")
                t_base, c_base = measure(s3, engine.baseline)
                t_rec, c_rec = measure(s3, engine.reconcile)
                rec_rows.append([f"{n:,}", "baseline at start (bisync --resync)", fmt_counts(c_base), total(c_base),
                                 f"{t_base:.2f}"])
                rec_rows.append([f"{n:,}", "reconcile, nothing changed", fmt_counts(c_rec), total(c_rec),
                                 f"{t_rec:.2f}"])

                from rclone_jupyter.changes import Batch

                ours_t, ours_c, floor_t, floor_c = [], [], [], []
                for i in range(repeat):
                    rel = rels[(i * 7919) % n]
                    change(data / rel, i)
                    t, c = measure(s3, lambda: engine.push(Batch(frozenset({rel}))))
                    ours_t.append(t), ours_c.append(c)
                    rel = rels[(i * 7919 + 1) % n]
                    change(data / rel, i)
                    t, c = measure(s3, lambda: rclone(s3, "copyto", str(data / rel), f"bench:bucket/{FOLDER}/{rel}"))
                    floor_t.append(t), floor_c.append(c)
                # The first push after the rcd stopped for idleness (10 s without a push) starts it again.
                cold_t, cold_c = [], []
                for i in range(max(3, repeat // 3)):
                    engine.rclone.close()
                    rel = rels[(i * 7919 + 5) % n]
                    change(data / rel, 3000 + i)
                    t, c = measure(s3, lambda: engine.push(Batch(frozenset({rel}))))
                    cold_t.append(t), cold_c.append(c)
                t_rec2, c_rec2 = measure(s3, engine.reconcile)
                rec_rows.append([f"{n:,}", f"reconcile after {repeat} pushes", fmt_counts(c_rec2), total(c_rec2),
                                 f"{t_rec2:.2f}"])
                # The periodic reconcile as the daemon runs it: only our own pushes since the last full one (the
                # floor's copyto runs above wrote 'from elsewhere' and rightly make it run bisync).
                for i in range(repeat):
                    rel = rels[(i * 7919 + 2) % n]
                    change(data / rel, 2000 + i)
                    engine.push(Batch(frozenset({rel})))
                t_per, c_per = measure(s3, engine.reconcile_if_changed)
                rec_rows.append([f"{n:,}", f"periodic reconcile after {repeat} pushes, nothing from elsewhere "
                                 "(as shipped: LIST-only check)", fmt_counts(c_per), total(c_per), f"{t_per:.2f}"])

                work = tmp / "plain-bisync"
                work.mkdir()
                plain = ["bisync", str(data), f"bench:bucket/{FOLDER}", "--workdir", str(work)]
                rclone(s3, *plain, "--resync")
                bis_t, bis_c = [], []
                for i in range(bisync_runs):
                    rel = rels[(i * 104729 + 3) % n]
                    change(data / rel, 1000 + i)
                    t, c = measure(s3, lambda: rclone(s3, *plain))
                    bis_t.append(t), bis_c.append(c)

            floor = statistics.median(floor_t)
            for name, ts, cs in (("rclone-jupyter push", ours_t, ours_c),
                                 ("rclone-jupyter push, first after idle (starts the rcd)", cold_t, cold_c),
                                 ("rclone copyto (floor)", floor_t, floor_c),
                                 ("rclone bisync (default)", bis_t, bis_c)):
                c = median_counts(cs)
                rows.append([f"{n:,}", name, fmt_counts(c), total(c), f"{statistics.median(ts) * 1000:.0f}",
                             f"{statistics.median(ts) / floor:.2f}x", len(ts)])
    table("One changed 4 KiB file: requests and wall time per change (medians)",
          ["files", "method", "requests by kind", "total", "ms", "vs floor", "runs"], rows)
    table("Reconcile (rclone-jupyter's bisync as shipped)",
          ["files", "run", "requests by kind", "total", "s"], rec_rows)


# -- 2. change-to-durable latency of the daemon as shipped --------------------------------------------------


class Daemon:
    def __init__(self, tmp: Path, s3: CountingS3, data: Path, extra: dict[str, str] | None = None):
        self.state = tmp / "state"
        self.log_path = tmp / "daemon.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_", "JUPYTER"))}
        env.update(s3.env(FOLDER), HOME=str(tmp), RCLONE_JUPYTER_DATA_DIR=str(data),
                   RCLONE_JUPYTER_STATE_DIR=str(self.state), RCLONE_JUPYTER_EXAMPLES_DIR="", **(extra or {}))
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 1800) -> float:
        started = time.monotonic()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([CLI, "start", "--no-jupyter"], env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                if json.loads((self.state / "status.json").read_text()).get("phase") == "running":
                    return time.monotonic() - started
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.05)
        raise TimeoutError("the daemon did not reach phase running")

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._log.close()


def bench_latency(n: int, changes: int, quiet: float) -> None:
    with tempfile.TemporaryDirectory(prefix="rj-latency-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        print(f"[latency] N={n}: creating files, starting the daemon ...", flush=True)
        rels = make_tree(data, n)
        seed_bucket(data, tmp / "s3")
        with CountingS3(tmp / "s3") as s3:
            daemon = Daemon(tmp, s3, data, {"RCLONE_JUPYTER_QUIET_PERIOD": str(quiet)})
            daemon.start()
            try:
                s3.counter.reset()
                latencies = []
                bucket = tmp / "s3" / "bucket" / FOLDER
                for i in range(changes):
                    rel = rels[(i * 7919) % n]
                    content = change(data / rel, i)
                    t0 = time.monotonic()
                    deadline = t0 + 60
                    while time.monotonic() < deadline:
                        try:
                            if (bucket / rel).read_bytes() == content:
                                break
                        except OSError:
                            pass
                        time.sleep(0.002)
                    else:
                        raise TimeoutError(f"change {i} never reached the bucket")
                    latencies.append(time.monotonic() - t0)
                counts = s3.counter.snapshot()
            finally:
                code = daemon.stop()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * len(latencies))) - 1)]
    table(f"Change-to-durable latency, daemon as shipped (quiet period {quiet:g} s, N={n:,}, {changes} changes)",
          ["median s", "p99 s", "max s", "goal median", "goal p99", "requests per change", "daemon exit"],
          [[f"{statistics.median(latencies):.2f}", f"{p99:.2f}", f"{latencies[-1]:.2f}", f"<= {quiet + 0.5:g}",
            f"<= {quiet + 2:g}", fmt_counts(counts, changes), code]])


# -- 3. restore ----------------------------------------------------------------------------------------------


def write_payload(folder: Path, files: int, total_mib: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    per = total_mib * 1024 * 1024 // files
    block = os.urandom(1024 * 1024)
    for i in range(files):
        with open(folder / f"part{i:05d}.bin", "wb") as out:
            left = per
            out.write(i.to_bytes(8, "big"))
            left -= 8
            while left > 0:
                out.write(block[: min(left, len(block))])
                left -= min(left, len(block))


TUNED_COPY = ("--transfers", "16", "--checkers", "16", "--multi-thread-streams", "8", "--fast-list")


def bench_restore(mib: int, rounds: int) -> None:
    rows = []
    for files in (1000, 1):
        with tempfile.TemporaryDirectory(prefix="rj-restore-") as tmp:
            tmp = Path(tmp)
            name = f"restore{files}"
            print(f"[restore] {files} x {mib / files:g} MiB: writing the bucket ...", flush=True)
            write_payload(tmp / "s3" / "bucket" / name, files, mib)
            with CountingS3(tmp / "s3") as s3:
                ours, plain = [], []

                def complete(out: Path) -> None:  # a fast restore that left files out would not count
                    got = sum(f.stat().st_size for f in out.iterdir())
                    if got != files * (mib * 1024 * 1024 // files):
                        raise RuntimeError(f"{out} holds {got} bytes, not the whole bucket folder")

                def run_ours(r):
                    out = tmp / f"ours{r}"
                    engine = make_engine(s3, out, tmp / f"state{r}", folder=name, direct=True)
                    os.sync()  # start each run with no dirty pages of the previous one to write back
                    ours.append(measure(None, engine.restore)[0])
                    complete(out)
                    shutil.rmtree(out)

                def run_plain(r):
                    out = tmp / f"plain{r}"
                    os.sync()
                    plain.append(measure(None, lambda: rclone(s3, "copy", f"bench:bucket/{name}", str(out),
                                                              *TUNED_COPY, direct=True))[0])
                    complete(out)
                    shutil.rmtree(out)

                # Untimed warm-up: the server's first run is ~30% slower (cold listing cache), and it would
                # fall on whoever goes first in round 0 (ours), leaving it one warm sample fewer.
                run_plain("warmup")
                plain.clear()
                for r in range(rounds):  # alternate who goes first
                    for run in ((run_ours, run_plain) if r % 2 == 0 else (run_plain, run_ours)):
                        run(r)
            best_ours, best_plain = min(ours), min(plain)
            rows.append([f"{files:,} x {mib / files:g} MiB", f"{best_ours:.2f}", f"{mib / best_ours:.0f}",
                         f"{best_plain:.2f}", f"{mib / best_plain:.0f}", f"{best_plain / best_ours:.0%}"])
    table(f"Restore of {mib} MiB (best of {rounds}; plain = rclone copy {' '.join(TUNED_COPY)})",
          ["layout", "ours s", "ours MiB/s", "plain s", "plain MiB/s", "ours / plain throughput"], rows)


# -- 4. idle -------------------------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _tree_rss_mib(pid: int) -> float:
    """RSS of the daemon plus its children (the push path's rclone rcd while it runs)."""
    total_mib = _rss_mib(pid)[0]
    for child in _children(pid):
        try:
            total_mib += _rss_mib(child)[0]
        except (OSError, KeyError):
            continue
    return total_mib


def bench_idle(n: int, seconds: float) -> None:
    from rclone_jupyter.watcher import Watcher

    with tempfile.TemporaryDirectory(prefix="rj-idle-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        print(f"[idle] N={n}: creating files ...", flush=True)
        make_tree(data, n)
        # The watch alone, in this process: the cost `start` pays before JupyterLab starts.
        watcher = Watcher(data, lambda rel: None)
        t_watch, _ = measure(None, watcher.start)
        watcher.stop()
        seed_bucket(data, tmp / "s3")
        with CountingS3(tmp / "s3") as s3:
            daemon = Daemon(tmp, s3, data)
            print(f"[idle] starting the daemon over {n} files (restore + baseline) ...", flush=True)
            t_start = daemon.start()
            try:
                pid = daemon.proc.pid
                time.sleep(2)  # let the start settle
                # One save, as a user makes before leaving: its rcd stays up to 10 s into the window, then stops.
                saved = change(data / "d000/f000000.txt", 1)
                served = tmp / "s3" / "bucket" / FOLDER / "d000/f000000.txt"
                while served.read_bytes() != saved:
                    time.sleep(0.05)
                time.sleep(0.5)
                s3.counter.reset()
                cpu0, t0 = _cpu_seconds(pid), time.monotonic()
                rss_max = tree_max = 0.0
                while time.monotonic() - t0 < seconds:
                    rss_max = max(rss_max, _rss_mib(pid)[0])
                    tree_max = max(tree_max, _tree_rss_mib(pid))
                    time.sleep(1)
                rcd_at_end = any(b"rcd" in Path(f"/proc/{c}/cmdline").read_bytes() for c in _children(pid))
                cpu = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
                counts = s3.counter.snapshot()
                rss, hwm = _rss_mib(pid)
            finally:
                code = daemon.stop()
    table(f"Idle daemon over {n:,} files for {seconds:g} s after one save (reconcile every 300 s: none here)",
          ["requests", "CPU", "RSS MiB (max sampled)", "with rclone rcd", "rcd at end", "peak RSS MiB (start incl.)",
           "watch setup s", "start to running s", "exit"],
          [[fmt_counts(counts), f"{cpu:.2%}", f"{rss_max:.0f}", f"{tree_max:.0f}", "running" if rcd_at_end else "stopped",
            f"{hwm:.0f}", f"{t_watch:.2f}", f"{t_start:.1f}", code]])


# -- main ----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="*", default=["push", "latency", "restore", "idle"],
                        choices=["push", "latency", "restore", "idle"], help="benchmarks to run (default: all)")
    parser.add_argument("--sizes", default="1000,10000", help="folder sizes for `push` (e.g. 1000,10000,100000)")
    parser.add_argument("--repeat", type=int, default=9, help="changes measured per size in `push`")
    parser.add_argument("--bisync-runs", type=int, default=2, help="default-bisync runs per size (they are slow)")
    parser.add_argument("--latency-files", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--quiet", type=float, default=1.0, help="RCLONE_JUPYTER_QUIET_PERIOD for `latency`")
    parser.add_argument("--restore-mib", type=int, default=1024, help="restore size in MiB (1024 = the issue's 1 GiB)")
    parser.add_argument("--restore-rounds", type=int, default=5)
    parser.add_argument("--idle-files", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(f"rclone-jupyter benchmarks; rclone at {RCLONE}; {os.cpu_count()} CPUs", flush=True)
    if "push" in args.what:
        bench_push([int(s) for s in args.sizes.split(",")], args.repeat, args.bisync_runs)
    if "latency" in args.what:
        bench_latency(args.latency_files, args.changes, args.quiet)
    if "restore" in args.what:
        bench_restore(args.restore_mib, args.restore_rounds)
    if "idle" in args.what:
        bench_idle(args.idle_files, args.idle_seconds)


if __name__ == "__main__":
    main()
