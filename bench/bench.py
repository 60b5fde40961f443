"""Benchmarks of rclone-jupyter against plain rclone, on a local S3 server that counts requests.

Run `python bench/bench.py --help`; bench/README.md explains each table. Every figure is measured in the same
run as the plain-rclone figure it is compared with. Nothing here asserts: it prints tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from s3count import KINDS, RCLONE, SERVERS, CountingS3  # noqa: E402

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


def code_version() -> str:
    """The commit measured, and whether the product had uncommitted changes (others may edit the checkout)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "rclone_jupyter"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}" + (" + uncommitted changes in rclone_jupyter/" if dirty else "")


def load() -> str:
    """The machine's 1-minute load average (2 cores, shared with other engineers' test suites)."""
    return f"{os.getloadavg()[0]:.1f}"


@contextlib.contextmanager
def seeded_server(kind: str, root: Path, local: Path | None, folder: str = FOLDER):
    """A counting S3 server of this kind ('rclone' or 'moto') whose bucket folder holds the files of `local`.

    `rclone serve s3` is seeded by writing into its folder before it starts (no request); moto after it started,
    with a tuned `rclone copy` through the uncounted endpoint (modtimes go into the objects' metadata)."""
    server = SERVERS[kind](root)
    if kind == "rclone" and local is not None:
        seed_bucket(local, root, folder)
    with server:
        if kind != "rclone" and local is not None:
            print(f"  seeding {server.kind} with {local} ...", flush=True)
            rclone(server, "copy", str(local), f"bench:bucket/{folder}", "--transfers", "16", "--checkers", "16",
                   direct=True)
        server.counter.reset()
        yield server


def sizes_under(root: Path) -> dict[str, int]:
    """{relative path: size} of the files under root (gone meanwhile, or rclone's temporary uploads: left out)."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if name.startswith(".rclone_temp"):
                continue
            try:
                out[os.path.relpath(os.path.join(folder, name), root)] = os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue
    return out


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def change(path: Path, tag: int) -> bytes:
    """Rewrite a file with new content of the same size; return the content."""
    data = path.read_bytes()
    new = f"{tag:016d}{time.monotonic_ns():020d}".encode() + data[36:]
    path.write_bytes(new)
    return new


def make_engine(s3: CountingS3, data: Path, state: Path, folder: str = FOLDER, direct: bool = False):
    """An Engine exactly as `rclone-jupyter start` builds it."""
    from rclone_jupyter.config import settings as settings_mod
    from rclone_jupyter.daemon.supervisor import make_engines, prepare

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
    load0 = load()
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix=f"rj-push-{n}-") as tmp:
            tmp = Path(tmp)
            data = tmp / "data"
            print(f"[push] N={n}: creating {n} files ...", flush=True)
            rels = make_tree(data, n)
            seed_bucket(data, tmp / "s3")
            # The floor writes into its own copy of the folder: its uploads into ours would be changes made
            # elsewhere (the reconcile would rightly keep both versions).
            seed_bucket(data, tmp / "s3", "floor")
            restored = tmp / "restored"
            with CountingS3(tmp / "s3") as s3:
                # The start as `start` runs it, in process: restore into an empty folder, then establish.
                engine = make_engine(s3, restored, tmp / "state")
                t_res, c_res = measure(s3, engine.restore)
                t_est, c_est = measure(s3, engine.establish)
                t_rec, c_rec = measure(s3, engine.reconcile)
                rec_rows.append([f"{n:,}", "restore (start)", fmt_counts(c_res), total(c_res), f"{t_res:.2f}"])
                rec_rows.append([f"{n:,}", "establish (start)", fmt_counts(c_est), total(c_est), f"{t_est:.2f}"])
                rec_rows.append([f"{n:,}", "reconcile, nothing changed", fmt_counts(c_rec), total(c_rec),
                                 f"{t_rec:.2f}"])
                data = restored

                from rclone_jupyter.model.changes import Batch

                def push(rel: str):
                    return measure(s3, lambda: engine.push(Batch(frozenset({rel}))))

                ours_t, ours_c, floor_t, floor_c = [], [], [], []
                for i in range(repeat):
                    rel = rels[(i * 7919) % n]
                    change(data / rel, i)
                    t, c = push(rel)
                    ours_t.append(t), ours_c.append(c)
                    rel = rels[(i * 7919 + 1) % n]
                    change(data / rel, i)
                    t, c = measure(s3, lambda: rclone(s3, "copyto", str(data / rel), f"bench:bucket/floor/{rel}"))
                    floor_t.append(t), floor_c.append(c)
                # The first push after the rcd stopped for idleness (10 s without a push) starts it again.
                cold_t, cold_c = [], []
                for i in range(max(3, repeat // 3)):
                    engine.rclone.close()
                    rel = rels[(i * 7919 + 5) % n]
                    change(data / rel, 3000 + i)
                    t, c = push(rel)
                    cold_t.append(t), cold_c.append(c)
                # A new executable file (content + the modes manifest), and a chmod alone (the manifest only).
                exe_t, exe_c, mod_t, mod_c = [], [], [], []
                for i in range(repeat):
                    rel = f"d000/run{i:03d}.sh"
                    (data / rel).write_bytes(b"#!/bin/sh\necho hi\n" + os.urandom(SMALL - 18))
                    os.chmod(data / rel, 0o755)
                    t, c = push(rel)
                    exe_t.append(t), exe_c.append(c)
                    rel = rels[(i * 7919 + 9) % n]
                    os.chmod(data / rel, 0o755)
                    t, c = push(rel)
                    mod_t.append(t), mod_c.append(c)
                t_rec2, c_rec2 = measure(s3, engine.reconcile)
                rec_rows.append([f"{n:,}", f"reconcile after {repeat * 3 + len(cold_t)} pushes (LIST-only)",
                                 fmt_counts(c_rec2), total(c_rec2), f"{t_rec2:.2f}"])
                engine.rclone.close()

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
                                 ("rclone-jupyter push, new executable file (chmod +x)", exe_t, exe_c),
                                 ("rclone-jupyter push, chmod +x alone", mod_t, mod_c),
                                 ("rclone copyto (floor)", floor_t, floor_c),
                                 ("rclone bisync (default)", bis_t, bis_c)):
                c = median_counts(cs)
                rows.append([f"{n:,}", name, fmt_counts(c), total(c), f"{statistics.median(ts) * 1000:.0f}",
                             f"{statistics.median(ts) / floor:.2f}x", len(ts)])
    table(f"One changed 4 KiB file: requests and wall time per change (medians; load {load0} -> {load()})",
          ["files", "method", "requests by kind", "total", "ms", "vs floor", "runs"], rows)
    table("Start and reconcile in process (the engine as `start` builds it, rclone serve s3)",
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

    def status(self) -> dict:
        try:
            return json.loads((self.state / "status.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def sync_once(self) -> int:
        """`rclone-jupyter sync --once` from a shell, as a user runs it: asks this daemon, waits for the answer."""
        return subprocess.run([CLI, "sync", "--once"], env=self.env, capture_output=True).returncode

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


def bench_latency(n: int, changes: int, quiet: float, grow_seconds: float = 5.0, grow_every: float = 0.1) -> None:
    load0 = load()
    with tempfile.TemporaryDirectory(prefix="rj-latency-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        print(f"[latency] N={n}: creating files, starting the daemon ...", flush=True)
        rels = make_tree(tmp / "src", n)
        seed_bucket(tmp / "src", tmp / "s3")  # a fresh container: the start restores into an empty data folder
        with CountingS3(tmp / "s3") as s3:
            daemon = Daemon(tmp, s3, data, {"RCLONE_JUPYTER_QUIET_PERIOD": str(quiet)})
            daemon.start()
            bucket = tmp / "s3" / "bucket" / FOLDER

            def wait_for(rel: str, content: bytes, timeout: float = 60) -> float:
                t0 = time.monotonic()
                while time.monotonic() - t0 < timeout:
                    try:
                        if (bucket / rel).read_bytes() == content:
                            return time.monotonic()
                    except OSError:
                        pass
                    time.sleep(0.002)
                raise TimeoutError(f"{rel} never reached the bucket")

            try:
                time.sleep(1)
                s3.counter.reset()
                latencies = []
                for i in range(changes):
                    rel = rels[(i * 7919) % n]
                    t0 = time.monotonic()
                    content = change(data / rel, i)  # written and closed
                    latencies.append(wait_for(rel, content) - t0)
                    time.sleep(0.2)  # a user does not save 50 files back to back
                counts = s3.counter.snapshot()
                # A growing file: appended and closed every 100 ms for 5 s.
                time.sleep(quiet + 0.5)
                s3.counter.reset()
                grow = data / "d000" / "growing.log"
                t0 = time.monotonic()
                i = 0
                while time.monotonic() - t0 < grow_seconds:
                    with open(grow, "ab") as out:
                        out.write(f"line {i:06d} {time.time():.6f}\n".encode())
                    i += 1
                    time.sleep(grow_every)
                t_last = time.monotonic()
                lag = wait_for("d000/growing.log", grow.read_bytes()) - t_last
                time.sleep(quiet + 0.5)  # nothing more should come
                grow_counts = s3.counter.snapshot()
            finally:
                code = daemon.stop()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * len(latencies))) - 1)]
    table(f"Write-to-durable latency of a small file written and closed, daemon as shipped (quiet period {quiet:g} s, "
          f"N={n:,}, {changes} changes; load {load0} -> {load()})",
          ["median s", "p99 s", "max s", "goal median", "goal p99", "moonshot", "requests per change", "daemon exit"],
          [[f"{statistics.median(latencies):.2f}", f"{p99:.2f}", f"{latencies[-1]:.2f}", "<= 0.5", "<= 1.5", "0.3",
            fmt_counts(counts, changes), code]])
    table(f"A growing file: appended and closed every {grow_every * 1000:g} ms for {grow_seconds:g} s "
          f"({i} writes)", ["uploads (PUT)", "goal: about one per quiet period", "all requests", "last write to durable s"],
          [[grow_counts["PUT"], f"~{grow_seconds / quiet:g}", fmt_counts(grow_counts), f"{lag:.2f}"]])


# -- 2b. start: `rclone-jupyter start` until running vs a plain tuned copy ----------------------------------

PLAIN_COPY = ("--transfers", "16", "--checkers", "16")


def bench_start(servers: list[str], sizes: list[int], rounds: int) -> None:
    rows = []
    for kind in servers:
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix=f"rj-start-{kind}-{n}-") as tmp:
                tmp = Path(tmp)
                print(f"[start] {kind} N={n}: creating {n} files ...", flush=True)
                make_tree(tmp / "src", n)
                with seeded_server(kind, tmp / "s3", tmp / "src") as s3:
                    shutil.rmtree(tmp / "src")
                    ours, plain = [], []
                    load0 = load()

                    def run_plain(r):
                        out = tmp / f"plain{r}"
                        os.sync()
                        t, c = measure(s3, lambda: rclone(s3, "copy", f"bench:bucket/{FOLDER}", str(out), *PLAIN_COPY))
                        if count_files(out) != n:
                            raise RuntimeError(f"plain copy holds {count_files(out)} files, not {n}")
                        plain.append((t, c))
                        shutil.rmtree(out)

                    def run_ours(r):
                        home = tmp / f"ours{r}"
                        data = home / "data"
                        home.mkdir()
                        daemon = Daemon(home, s3, data)
                        os.sync()
                        s3.counter.reset()
                        try:
                            t = daemon.start()
                            c = s3.counter.snapshot()
                        finally:
                            daemon.stop()
                        got = count_files(data) - (1 if (data / "welcome.txt").exists() else 0)
                        if got != n:
                            raise RuntimeError(f"the start restored {got} files, not {n}")
                        ours.append((t, c))
                        shutil.rmtree(home)

                    for r in range(rounds):  # alternate who goes first
                        for run in ((run_plain, run_ours) if r % 2 == 0 else (run_ours, run_plain)):
                            print(f"  round {r}: {run.__name__} ...", flush=True)
                            run(r)
                    load1 = load()
            best_ours = min(ours, key=lambda x: x[0])
            best_plain = min(plain, key=lambda x: x[0])
            med_ours = statistics.median(o[0] for o in ours)
            med_plain = statistics.median(p[0] for p in plain)
            rows.append([s3.kind, f"{n:,}", f"{best_ours[0]:.1f}", f"{best_plain[0]:.1f}",
                         f"{best_ours[0] / best_plain[0]:.2f}x", f"{med_ours / med_plain:.2f}x",
                         " / ".join(f"{o[0]:.1f}:{p[0]:.1f}" for o, p in zip(ours, plain)),
                         fmt_counts(best_ours[1]), fmt_counts(best_plain[1]), f"{load0} -> {load1}"])
    table(f"Start until phase running (`start --no-jupyter`) vs plain `rclone copy {' '.join(PLAIN_COPY)}` into an "
          f"empty folder (best of {rounds}; goal <= 1.2x, moonshot 1.05x)",
          ["server", "files", "ours s", "plain s", "ratio", "median ratio", "all runs ours:plain s", "ours requests",
           "plain requests", "load"], rows)


# -- 2c. sync --once with one pending change ---------------------------------------------------------------


def bench_once(kind: str, n: int, reps: int) -> None:
    rows = []
    load0 = load()
    with tempfile.TemporaryDirectory(prefix=f"rj-once-{n}-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        print(f"[once] {kind} N={n}: creating files, starting the daemon ...", flush=True)
        rels = make_tree(tmp / "src", n)
        with seeded_server(kind, tmp / "s3", tmp / "src") as s3:  # a fresh container: restored into an empty folder
            # A long quiet period, so the change is still pending (a file held open) when `sync --once` asks.
            daemon = Daemon(tmp, s3, data, {"RCLONE_JUPYTER_QUIET_PERIOD": "8", "RCLONE_JUPYTER_MAX_DELAY": "20"})
            daemon.start()
            try:
                for what in ("one pending change", "nothing pending"):
                    ts, cs = [], []
                    for i in range(reps):
                        time.sleep(1.0)
                        held = None
                        if what == "one pending change":
                            held = open(data / rels[(i * 7919) % n], "r+b")
                            held.write(f"{i:016d}{time.monotonic_ns():020d}".encode())
                            held.flush()
                            deadline = time.monotonic() + 10
                            while daemon.status().get("pending", 0) < 1 and time.monotonic() < deadline:
                                time.sleep(0.01)
                        s3.counter.reset()
                        t0 = time.monotonic()
                        code = daemon.sync_once()
                        ts.append(time.monotonic() - t0)
                        cs.append(s3.counter.snapshot())
                        if held is not None:
                            held.close()
                            time.sleep(0.5)  # the close is a change too: pushed before the next round
                        if code != 0:
                            raise RuntimeError(f"sync --once exited {code}")
                    c = median_counts(cs)
                    rows.append([s3.kind, f"{n:,}", what, fmt_counts(c), total(c), f"{statistics.median(ts):.2f}",
                                 reps])
            finally:
                daemon.stop()
    table(f"`rclone-jupyter sync --once` asking a running daemon (medians, wall time of the command incl. its Python "
          f"start; load {load0} -> {load()})",
          ["server", "files", "case", "requests by kind", "total", "s", "runs"], rows)


# -- 2d. a change made elsewhere -----------------------------------------------------------------------------


def bench_remote(servers: list[str], sizes: list[int], k: int) -> None:
    rows = []
    load0 = load()
    for kind in servers:
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix=f"rj-remote-{kind}-{n}-") as tmp:
                tmp = Path(tmp)
                print(f"[remote] {kind} N={n}: creating files ...", flush=True)
                rels = make_tree(tmp / "src", n)
                with seeded_server(kind, tmp / "s3", tmp / "src") as s3:
                    data = tmp / "data"
                    engine = make_engine(s3, data, tmp / "state")
                    try:
                        engine.restore()
                        engine.establish()
                        # Elsewhere: k added, k changed, k deleted, through the uncounted endpoint.
                        other = tmp / "elsewhere"
                        added = [f"d000/new{i:03d}.txt" for i in range(k)]
                        changed = [rels[(i * 7919 + 11) % n] for i in range(k)]
                        deleted = [rels[(i * 7919 + 13) % n] for i in range(k)]
                        want = {}
                        for rel in added + changed:
                            (other / rel).parent.mkdir(parents=True, exist_ok=True)
                            want[rel] = f"elsewhere {rel} {time.time_ns()}".encode() + os.urandom(64)
                            (other / rel).write_bytes(want[rel])
                        rclone(s3, "copy", str(other), f"bench:bucket/{FOLDER}", direct=True)
                        gone = tmp / "gone.txt"
                        gone.write_text("".join(f"{r}\n" for r in deleted))
                        rclone(s3, "delete", f"bench:bucket/{FOLDER}", "--files-from", str(gone), direct=True)
                        t, c = measure(s3, engine.reconcile)
                        ok = (all((data / r).read_bytes() == b for r, b in want.items())
                              and not any((data / r).exists() for r in deleted))
                        t2, c2 = measure(s3, engine.reconcile)
                    finally:
                        engine.rclone.close()
                    rows.append([s3.kind, f"{n:,}", f"{k} added, {k} changed, {k} deleted", fmt_counts(c), total(c),
                                 f"{t:.2f}", "yes" if ok else "NO", fmt_counts(c2)])
    table(f"A change made elsewhere: one reconcile (the periodic one, or `sync --once`) brings it into the data "
          f"folder (load {load0} -> {load()})",
          ["server", "files", "changes", "requests by kind", "total", "s until the data folder has them",
           "all arrived", "next reconcile (nothing new)"], rows)


# -- 2e. burst: a git clone into the data folder ----------------------------------------------------------------


def make_repo(root: Path, files: int) -> Path:
    """A local bare repository of `files` generated files (some executable), for `git clone --no-local`."""
    work = root / "gen"
    work.mkdir(parents=True)
    for i in range(files):
        path = work / f"pkg{i // 50:02d}" / f"mod{i:04d}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"# module {i}\n" + "x = 1\n" * (20 + i % 200))
        if i % 40 == 0:
            path.chmod(0o755)
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@example.invalid"}
    for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "generated"]):
        subprocess.run(argv, cwd=work, env=env, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / "repo.git")], check=True)
    shutil.rmtree(work)
    return root / "repo.git"


def bench_burst(n: int, files: int) -> None:
    load0 = load()
    with tempfile.TemporaryDirectory(prefix="rj-burst-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        print(f"[burst] N={n}: a repository of {files} files, creating files, starting the daemon ...", flush=True)
        bare = make_repo(tmp / "repo", files)
        make_tree(tmp / "src", n)
        seed_bucket(tmp / "src", tmp / "s3")  # a fresh container: the start restores into an empty data folder
        with CountingS3(tmp / "s3") as s3:
            daemon = Daemon(tmp, s3, data)
            daemon.start()
            bucket = tmp / "s3" / "bucket" / FOLDER / "clone"
            try:
                time.sleep(2)
                s3.counter.reset()
                t0 = time.monotonic()
                subprocess.run(["git", "clone", "-q", "--no-local", str(bare), str(data / "clone")], check=True)
                t_clone = time.monotonic() - t0
                here = sizes_under(data / "clone")
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    there = sizes_under(bucket)
                    if there == here and daemon.status().get("pending", 1) == 0:
                        break
                    time.sleep(0.05)
                else:
                    raise TimeoutError("the clone never reached the bucket")
                t_synced = time.monotonic() - t0
                time.sleep(2)  # stragglers
                counts = s3.counter.snapshot()
            finally:
                code = daemon.stop()
    table(f"Burst: `git clone --no-local` of a {files}-file repository into the data folder of a running daemon "
          f"(N={n:,}; load {load0} -> {load()})",
          ["files in the clone", "requests by kind", "total", "requests per file", "goal", "clone s",
           "clone to synced s", "daemon exit"],
          [[len(here), fmt_counts(counts), total(counts), f"{total(counts) / len(here):.2f}", "<= 1.1",
            f"{t_clone:.1f}", f"{t_synced:.1f}", code]])


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


def _user_system_seconds(pid: int) -> tuple[float, float]:
    """The process's own user and system CPU seconds (not its children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _cpu_seconds(pid: int) -> float:
    return sum(_user_system_seconds(pid))


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


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def bench_idle(n: int, seconds: float) -> None:
    from rclone_jupyter.local.watcher import Watcher

    with tempfile.TemporaryDirectory(prefix="rj-idle-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        print(f"[idle] N={n}: creating files ...", flush=True)
        make_tree(tmp / "src", n)
        # The watch alone, in this process, on a tree of the same shape: the cost `start` pays before JupyterLab.
        watcher = Watcher(tmp / "src", lambda rel: None)
        t_watch, _ = measure(None, watcher.start)
        watcher.stop()
        seed_bucket(tmp / "src", tmp / "s3")  # a fresh container: the start restores into an empty data folder
        shutil.rmtree(tmp / "src")
        with CountingS3(tmp / "s3") as s3:
            daemon = Daemon(tmp, s3, data)
            print(f"[idle] starting the daemon over {n} files (restore + establish) ...", flush=True)
            t_start = daemon.start()
            try:
                pid = daemon.proc.pid
                time.sleep(2)  # let the start settle
                # One save, as a user makes before leaving: its rcd stays up to 10 s into the window, then stops.
                saved = change(data / "d000/f000000.txt", 1)
                served = tmp / "s3" / "bucket" / FOLDER / "d000/f000000.txt"
                while _content(served) != saved:  # the server may replace the file by removing it first
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
    every = ["start", "once", "remote", "latency", "burst", "push", "restore", "idle", "link"]
    parser.add_argument("what", nargs="*", default=every, choices=every, help="benchmarks to run (default: all)")
    parser.add_argument("--servers", default="rclone,moto", help="S3 servers for `start` and `remote`")
    parser.add_argument("--start-sizes", default="1000,10000", help="folder sizes for `start`")
    parser.add_argument("--start-rounds", type=int, default=2, help="alternating rounds per size in `start`")
    parser.add_argument("--once-files", type=int, default=10_000)
    parser.add_argument("--once-server", default="rclone", choices=sorted(SERVERS))
    parser.add_argument("--once-runs", type=int, default=3)
    parser.add_argument("--remote-sizes", default="1000,10000", help="folder sizes for `remote`")
    parser.add_argument("--remote-k", type=int, default=3, help="objects added, changed and deleted elsewhere")
    parser.add_argument("--burst-files", type=int, default=1500, help="files in the generated repository")
    parser.add_argument("--burst-folder", type=int, default=1000, help="files already in the data folder")
    parser.add_argument("--sizes", default="1000,10000", help="folder sizes for `push` (e.g. 1000,10000,100000)")
    parser.add_argument("--repeat", type=int, default=9, help="changes measured per size in `push`")
    parser.add_argument("--bisync-runs", type=int, default=2, help="default-bisync runs per size (they are slow)")
    parser.add_argument("--latency-files", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--quiet", type=float, default=1.0, help="RCLONE_JUPYTER_QUIET_PERIOD for `latency`")
    parser.add_argument("--restore-mib", type=int, default=1024, help="restore size in MiB (1024 = the issue's 1 GiB)")
    parser.add_argument("--restore-rounds", type=int, default=5)
    parser.add_argument("--idle-files", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--link-rtts", default="0,60", help="round-trip times (ms) of the real-link table")
    parser.add_argument("--link-big-mib", type=int, default=48, help="the large file uploading during saves")
    parser.add_argument("--link-slow-mib", type=int, default=32, help="the file written over --link-slow-seconds")
    parser.add_argument("--link-slow-seconds", type=float, default=16)
    parser.add_argument("--link-stop-mib", type=int, default=64, help="the large file in flight at the stop")
    parser.add_argument("--link-burst-files", type=int, default=1000)
    parser.add_argument("--link-saves", type=int, default=10, help="notebook saves during the large upload")
    parser.add_argument("--link-rows", default="save,slow,stop,burst", help="rows of the real-link table to run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(f"rclone-jupyter benchmarks ({code_version()}); rclone at {RCLONE}; {os.cpu_count()} CPUs; "
          f"load {load()}", flush=True)
    servers = args.servers.split(",")
    if "start" in args.what:
        bench_start(servers, [int(x) for x in args.start_sizes.split(",")], args.start_rounds)
    if "once" in args.what:
        bench_once(args.once_server, args.once_files, args.once_runs)
    if "remote" in args.what:
        bench_remote(servers, [int(x) for x in args.remote_sizes.split(",")], args.remote_k)
    if "burst" in args.what:
        bench_burst(args.burst_folder, args.burst_files)
    if "push" in args.what:
        bench_push([int(s) for s in args.sizes.split(",")], args.repeat, args.bisync_runs)
    if "latency" in args.what:
        bench_latency(args.latency_files, args.changes, args.quiet)
    if "restore" in args.what:
        bench_restore(args.restore_mib, args.restore_rounds)
    if "idle" in args.what:
        bench_idle(args.idle_files, args.idle_seconds)
    if "link" in args.what:
        from link import bench_link

        bench_link(Daemon, table, load, [float(x) / 1000 for x in args.link_rtts.split(",")], args.link_big_mib,
                   args.link_slow_mib, args.link_slow_seconds, args.link_stop_mib, args.link_burst_files,
                   args.link_saves, tuple(args.link_rows.split(",")))


if __name__ == "__main__":
    main()
