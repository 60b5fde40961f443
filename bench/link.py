"""The "real link" table (issue 16): the push side on a residential uplink, beside plain and tuned rclone.

`rclone serve s3` behind the tests' throttled link (tests/throttle.py: one token bucket per direction shared by
every connection, an optional round-trip time), 2 MiB/s up and 8 MiB/s down, at 0 and 60 ms. Every figure of a
row is measured in the same run as its rclone references. The bucket is read from the server's own folder
(`serve s3` writes an object under a temporary name and renames it whole), so looking costs no request and no
bandwidth. Run `python bench/bench.py link`; bench/README.md explains the rows.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from throttle import MiB, ThrottledLink  # noqa: E402

from s3count import RCLONE, CountingS3  # noqa: E402

UP, DOWN = 2 * MiB, 8 * MiB
FOLDER = "bench"
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
TUNED = ("--transfers", "64", "--checkers", "64")


class LinkS3:
    """`rclone serve s3` with the link in front: the daemon and the rclone references go through the link."""

    def __init__(self, root: Path, rtt: float):
        self.root = root
        self.server = CountingS3(root)
        self.rtt = rtt
        self.link: ThrottledLink | None = None

    def __enter__(self) -> "LinkS3":
        self.server.start()
        self.link = ThrottledLink(self.server.upstream_port, up=UP, down=DOWN, rtt=self.rtt).start()
        return self

    def __exit__(self, *exc) -> None:
        self.link.stop()
        self.server.stop()

    def env(self, folder: str = FOLDER, direct: bool = False) -> dict[str, str]:
        return {**self.server.env(folder, direct=True), "AWS_ENDPOINT_URL": self.link.url}

    def rclone_env(self) -> dict[str, str]:
        env = self.server.rclone_env(direct=True)
        env["RCLONE_CONFIG_BENCH_ENDPOINT"] = self.link.url
        return env

    def rclone(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([RCLONE, *args], env=self.rclone_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def path(self, rel: str, folder: str = FOLDER) -> Path:
        """Where the server keeps an object (read it directly: no request)."""
        return self.root / "bucket" / folder / rel

    def has(self, rel: str, content: bytes | None = None, folder: str = FOLDER) -> bool:
        """The object is there (with this content, if given)."""
        try:
            return self.path(rel, folder).is_file() if content is None else \
                self.path(rel, folder).read_bytes() == content
        except OSError:
            return False

    def count(self, folder: str) -> int:
        return sum(1 for _, _, files in os.walk(self.root / "bucket" / folder) for f in files
                   if not f.startswith(".rclone_temp"))

    def sending(self, at_least: int = MiB, timeout: float = 120) -> None:
        """Wait until `at_least` more bytes crossed the uplink: an upload is under way."""
        start = self.link.bytes_up
        deadline = time.monotonic() + timeout
        while self.link.bytes_up - start < at_least:
            if time.monotonic() > deadline:
                raise TimeoutError("no upload started")
            time.sleep(0.01)


def wait(predicate, timeout: float = 300, interval: float = 0.005) -> float:
    """Poll until predicate() is true; return the time it became so."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition never came true")
        time.sleep(interval)
    return time.monotonic()


def save(path: Path, content: bytes) -> None:
    """As Jupyter saves: a temporary file renamed into place."""
    tmp = path.with_name(f".~{path.name}")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def notebook(i: int) -> bytes:
    return NOTEBOOK.replace(b"{}", f'{{"save": {i}, "t": {time.time()}}}'.encode())


# -- the rows ------------------------------------------------------------------------------------------------


def small_save_during_large(daemon_cls, tmp: Path, rtt: float, big_mib: int, saves: int) -> list[list[str]]:
    """Notebook saves while a large file uploads: ours (the daemon), and an rclone copyto of the notebook while
    another rclone uploads the large file (plain: defaults; tuned: no check before, no HEAD after)."""
    rows = []
    big = os.urandom(big_mib * MiB)
    with LinkS3(tmp / "s3", rtt) as s3:
        data = tmp / "data"
        daemon = daemon_cls(tmp, s3, data)
        daemon.start()
        try:
            (data / "model.bin").write_bytes(big)
            s3.sending()
            latencies, in_flight = [], 0
            for i in range(saves):
                content = notebook(i)
                t0 = time.monotonic()
                save(data / "analysis.ipynb", content)
                latencies.append(wait(lambda: s3.has("analysis.ipynb", content)) - t0)
                in_flight += not s3.has("model.bin")
                time.sleep(0.5)
            wait(lambda: s3.has("model.bin"), timeout=600)
        finally:
            code = daemon.stop()
        rows.append(_latency_row("rclone-jupyter", rtt, big_mib, latencies, in_flight, saves, f"exit {code}"))
        src = tmp / "src"
        src.mkdir()
        (src / "model.bin").write_bytes(big)
        for name, flags in (("plain rclone copyto", ()), ("tuned rclone copyto", ("--no-check-dest",
                                                                                    "--s3-no-head"))):
            big_run = s3.rclone("copyto", str(src / "model.bin"), f"bench:bucket/{name[:5]}/model.bin", *flags)
            s3.sending()
            latencies, in_flight = [], 0
            for i in range(saves):
                save(src / "analysis.ipynb", notebook(i))
                t0 = time.monotonic()
                subprocess.run([RCLONE, "copyto", str(src / "analysis.ipynb"),
                                f"bench:bucket/{name[:5]}/analysis.ipynb", *flags], env=s3.rclone_env(),
                               check=True, capture_output=True)
                latencies.append(time.monotonic() - t0)
                in_flight += big_run.poll() is None
                time.sleep(0.5)
            big_run.wait()
            rows.append(_latency_row(name + " (beside a second rclone)", rtt, big_mib, latencies, in_flight, saves,
                                     f"exit {big_run.returncode}"))
    return rows


def _latency_row(who, rtt, big_mib, latencies, in_flight, saves, note):
    return [who, f"{rtt * 1000:.0f}", f"{big_mib} MiB", f"{statistics.median(latencies):.2f}",
            f"{max(latencies):.2f}", f"{in_flight}/{saves}", note]


def slow_writer(daemon_cls, tmp: Path, rtt: float, mib: int, seconds: float) -> list[list[str]]:
    """A file written through one open file over `seconds`: bytes sent up per byte written, and how long after
    the close the bucket holds the final version, against the link floor: a plain rclone copyto of the same file
    over the same link, in the same run (on a loaded machine the link is slower than its nominal rate)."""
    rows = []
    content = os.urandom(mib * MiB)
    chunk = 256 * 1024
    with LinkS3(tmp / "s3", rtt) as s3:
        data = tmp / "data"
        daemon = daemon_cls(tmp, s3, data)
        daemon.start()
        try:
            before = s3.link.bytes_up
            with open(data / "checkpoint.bin", "wb") as out:
                for offset in range(0, len(content), chunk):
                    out.write(content[offset:offset + chunk])
                    out.flush()
                    time.sleep(seconds * chunk / len(content))
            closed = time.monotonic()
            lag = wait(lambda: s3.has("checkpoint.bin", content), timeout=900) - closed
            sent = s3.link.bytes_up - before
        finally:
            code = daemon.stop()
        warnings = sum(1 for line in daemon.log_path.read_text(errors="replace").splitlines()
                       if "WARNING" in line and "checkpoint.bin" in line)
        src = tmp / "src"
        src.mkdir()
        (src / "checkpoint.bin").write_bytes(content)
        before = s3.link.bytes_up
        t0 = time.monotonic()
        s3.rclone("copyto", str(src / "checkpoint.bin"), "bench:bucket/plain/checkpoint.bin").wait()
        floor = time.monotonic() - t0
        rows.append(["rclone-jupyter", f"{rtt * 1000:.0f}", f"{mib} MiB over {seconds:g} s", f"{sent / len(content):.2f}",
                     f"{lag:.1f}", f"{lag / floor:.2f}x", f"{warnings} WARNING(s) about it, exit {code}"])
        rows.append(["plain rclone copyto after the close (the floor)", f"{rtt * 1000:.0f}", f"{mib} MiB",
                     f"{(s3.link.bytes_up - before) / len(content):.2f}", f"{floor:.1f}", "1.00x", ""])
    return rows


def the_stop(daemon_cls, tmp: Path, rtt: float, big_mib: int, deadline: float) -> list[list[str]]:
    """SIGTERM 0.5 s after saving 3 notebooks while a large file uploads."""
    big = os.urandom(big_mib * MiB)
    with LinkS3(tmp / "s3", rtt) as s3:
        data = tmp / "data"
        daemon = daemon_cls(tmp, s3, data, {"RCLONE_JUPYTER_FLUSH_DEADLINE": f"{deadline:g}"})
        daemon.start()
        (data / "checkpoint.bin").write_bytes(big)
        s3.sending()
        saved = {f"nb{i}.ipynb": notebook(i) for i in range(3)}
        for name, content in saved.items():
            save(data / name, content)
        time.sleep(0.5)
        t0 = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=deadline + 60)
        took = time.monotonic() - t0
        daemon._log.close()
        landed = sum(s3.has(name, content) for name, content in saved.items())
        unsaved = [line for line in daemon.log_path.read_text(errors="replace").splitlines() if "NOT saved" in line]
        named = bool(unsaved) and "checkpoint.bin" in unsaved[-1]
        large = ("whole" if s3.has("checkpoint.bin", big) else "PARTIAL" if s3.has("checkpoint.bin")
                 else "absent")
    return [["rclone-jupyter", f"{rtt * 1000:.0f}", f"{big_mib} MiB", f"{landed}/3", f"{took:.1f}", str(code),
             "yes" if named else "no", large]]


def burst(daemon_cls, tmp: Path, rtt: float, files: int, size: int) -> list[list[str]]:
    """`pip install` into a venv of the data folder: `files` new files of `size` bytes in new package folders.
    Ours: from the first write until the bucket holds them all; rclone: a copy of the same files."""
    rows = []
    block = os.urandom(size)
    per_package = 25

    def write_tree(root: Path) -> None:
        for i in range(files):
            path = root / f"pkg{i // per_package:03d}" / f"mod{i:05d}.py"
            if i % per_package == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(i.to_bytes(8, "big") + block[8:])

    site = "venv/lib/python3.11/site-packages"
    with LinkS3(tmp / "s3", rtt) as s3:
        data = tmp / "data"
        (data / site).mkdir(parents=True)
        (data / site / "existing.py").write_bytes(block)
        daemon = daemon_cls(tmp, s3, data)
        daemon.start()
        try:
            wait(lambda: s3.has(f"{site}/existing.py"), timeout=120)
            # A daemon that already saved something since its start (the rcd that the start phases ran is gone
            # with their thread): the burst measures the push, not the first rcd start.
            (data / "warm.txt").write_text("warm")
            wait(lambda: s3.has("warm.txt"), timeout=120)
            t0 = time.monotonic()
            write_tree(data / site)
            written = time.monotonic() - t0
            took = wait(lambda: s3.count(f"{FOLDER}/{site}") >= files + 1, timeout=900, interval=0.02) - t0
        finally:
            code = daemon.stop()
        rows.append(["rclone-jupyter", f"{rtt * 1000:.0f}", f"{files:,} x {size:,} B", f"{took:.1f}",
                     f"writing took {written:.1f} s; exit {code}"])
        src = tmp / "src"
        write_tree(src)
        for name, flags in (("plain rclone copy (defaults)", ()), ("tuned rclone copy", TUNED)):
            t0 = time.monotonic()
            run = s3.rclone("copy", str(src), f"bench:bucket/{name[:5]}", *flags)
            run.wait()
            took = time.monotonic() - t0
            rows.append([name + (" " + " ".join(flags) if flags else ""), f"{rtt * 1000:.0f}",
                         f"{files:,} x {size:,} B", f"{took:.1f}", f"exit {run.returncode}"])
    return rows


ROWS = ("save", "slow", "stop", "burst")


def bench_link(daemon_cls, table, load, rtts: list[float], big_mib: int, slow_mib: int, slow_seconds: float,
               stop_mib: int, burst_files: int, saves: int, rows_wanted: tuple[str, ...] = ROWS) -> None:
    save_rows, slow_rows, stop_rows, burst_rows = [], [], [], []
    load0 = load()
    for rtt in rtts:
        for name, rows, fn, args in (("save", save_rows, small_save_during_large, (big_mib, saves)),
                                     ("slow", slow_rows, slow_writer, (slow_mib, slow_seconds)),
                                     ("stop", stop_rows, the_stop, (stop_mib, 25.0)),
                                     ("burst", burst_rows, burst, (burst_files, 1536))):
            if name not in rows_wanted:
                continue
            print(f"[link] rtt {rtt * 1000:.0f} ms: {fn.__name__} ...", flush=True)
            with tempfile.TemporaryDirectory(prefix=f"rj-link-{fn.__name__}-") as tmp:
                rows.extend(fn(daemon_cls, Path(tmp), rtt, *args))
    link = f"{UP // MiB} MiB/s up, {DOWN // MiB} MiB/s down"
    table = _skip_empty(table)
    table(f"Real link ({link}): a notebook saved while a large file uploads, {saves} saves 0.5 s apart "
          f"(load {load0} -> {load()})",
          ["who", "rtt ms", "large file", "median s", "max s", "saved while the large one was in flight", "note"],
          save_rows)
    table(f"Real link ({link}): a file written through one open file at the uplink's rate",
          ["who", "rtt ms", "file", "bytes up per byte written", "close to durable s", "vs the floor", "note"],
          slow_rows)
    table(f"Real link ({link}): SIGTERM 0.5 s after saving 3 notebooks while a large file uploads (flush deadline 25 s)",
          ["who", "rtt ms", "large file", "notebooks in the bucket", "stop took s", "exit", "log names the large file",
           "the large file in the bucket"], stop_rows)
    table(f"Real link ({link}): a burst of new small files (pip install into a venv in the data folder)",
          ["who", "rtt ms", "files", "s until all are in the bucket", "note"], burst_rows)


def _skip_empty(table):
    return lambda title, header, rows: table(title, header, rows) if rows else None
