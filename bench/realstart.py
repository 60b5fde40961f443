"""The start side of the "real link" table: a home link in front of `rclone serve s3`, beside plain rclone.

The link is tests/throttle.py's proxy (one token bucket per direction shared by every connection, an optional
round-trip time), at 2 MiB/s up and 8 MiB/s down, at 0 and 60 ms. Everything in one table is measured in the
same run on the same link. Nothing asserts: it prints tables. bench/README.md explains each one.

    .venv/bin/python bench/realstart.py                       # both tables (about 10 minutes on 2 cores)
    .venv/bin/python bench/realstart.py large --rtts 0        # JupyterLab vs the last byte, 0 ms only
    .venv/bin/python bench/realstart.py small --small-files 3000 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from bench import CLI, FOLDER, code_version, count_files, load, make_tree, seed_bucket, table  # noqa: E402
from s3count import RCLONE, CountingS3  # noqa: E402
from conftest import free_port  # noqa: E402  (below the ephemeral range: rclone's connections never take it)
from throttle import MiB, ThrottledLink  # noqa: E402

UP, DOWN = 2 * MiB, 8 * MiB
DEFAULT_COPY: tuple[str, ...] = ()  # rclone's defaults: 4 transfers, 8 checkers
TUNED_COPY = ("--transfers", "64", "--checkers", "64", "--fast-list")
AWS_S3_SYNC_3000_AT_60MS = 35.1  # the figure for the seed's `aws s3 sync` (not measured here)


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class Start:
    """A real `rclone-jupyter start` with JupyterLab; times from the process start to JupyterLab answering
    (`/api` 200) and to the restore's state `done` (every byte here)."""

    def __init__(self, home: Path, endpoint_env: dict[str, str] | None):
        self.home = home
        self.state = home / "state"
        self.data = home / "data"
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_", "JUPYTER"))}
        env.update(endpoint_env or {}, HOME=str(home), RCLONE_JUPYTER_DATA_DIR=str(self.data),
                   RCLONE_JUPYTER_STATE_DIR=str(self.state), RCLONE_JUPYTER_EXAMPLES_DIR="",
                   JUPYTERLAB_PORT=str(self.port), JUPYTERLAB_PW="bench-password-not-secret",
                   JUPYTER_CONFIG_DIR=str(home / ".jupyter"), JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"),
                   JUPYTER_RUNTIME_DIR=str(home / ".local/share/jupyter/runtime"))
        self.env = env

    def restore_state(self) -> str | None:
        try:
            return (json.loads((self.state / "status.json").read_text()).get("restore") or {}).get("state")
        except (FileNotFoundError, ValueError):
            return None

    def run(self, timeout: float = 900) -> tuple[float, float]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "daemon.log", "ab") as log:
            started = time.monotonic()
            proc = subprocess.Popen([CLI, "start"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            try:
                jupyter = everything = None
                while time.monotonic() - started < timeout and (jupyter is None or everything is None):
                    if proc.poll() is not None:
                        raise RuntimeError(f"start exited {proc.returncode}: "
                                           f"{(self.home / 'daemon.log').read_text()[-2000:]}")
                    now = time.monotonic() - started
                    if jupyter is None and answers(self.port):
                        jupyter = now
                    state = self.restore_state()
                    if everything is None and (state == "done" or (state is None and jupyter is not None)):
                        everything = now  # no bucket (no restore at all): nothing to wait for
                    time.sleep(0.05)
                if jupyter is None or everything is None:
                    raise TimeoutError("the start did not finish")
                return jupyter, everything
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@contextlib.contextmanager
def linked_server(tmp: Path, rtt: float):
    """`rclone serve s3` over tmp/s3 (seed it before) behind the home link at this round-trip time."""
    with CountingS3(tmp / "s3") as s3, ThrottledLink(s3.upstream_port, up=UP, down=DOWN, rtt=rtt) as link:
        env = s3.env(FOLDER, direct=True)
        env["AWS_ENDPOINT_URL"] = link.url
        rclone_env = s3.rclone_env(direct=True)
        rclone_env["RCLONE_CONFIG_BENCH_ENDPOINT"] = link.url
        yield env, rclone_env, s3.rclone_env(direct=True)


def timed_copy(rclone_env: dict[str, str], dest: Path, flags: tuple[str, ...], expect: int) -> float:
    started = time.monotonic()
    result = subprocess.run([RCLONE, "copy", f"bench:bucket/{FOLDER}", str(dest), *flags], env=rclone_env,
                            capture_output=True, text=True)
    elapsed = time.monotonic() - started
    # At least: a start before it may have saved JupyterLab's own state (.rclone-jupyter-lab/) into the folder.
    if result.returncode != 0 or count_files(dest) < expect:
        raise RuntimeError(f"rclone copy failed ({result.returncode}, {count_files(dest)} files): {result.stderr[-500:]}")
    shutil.rmtree(dest)
    return elapsed


def jupyter_alone(tmp: Path, rounds: int, pick=statistics.median) -> float:
    """JupyterLab's own start here: `rclone-jupyter start` with no bucket (nothing to restore), over rounds."""
    return pick([Start(tmp / f"alone{r}", None).run()[0] for r in range(rounds)])


def write_large_folder(root: Path, small: int, large: int, large_mib: int) -> int:
    make_tree(root, small, 1536)
    for i in range(large):
        path = root / "models" / f"w{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(os.urandom(large_mib * MiB))
    return small + large


def bench_large(rtts: list[float], rounds: int, small: int, large: int, large_mib: int) -> None:
    """JupyterLab vs the last byte: the issue's folder of 300 small files and 4 of 32 MiB."""
    rows = []
    load0 = load()
    for rtt in rtts:
        with tempfile.TemporaryDirectory(prefix="rj-realstart-large-") as tmp:
            tmp = Path(tmp)
            n = write_large_folder(tmp / "src", small, large, large_mib)
            seed_bucket(tmp / "src", tmp / "s3")
            shutil.rmtree(tmp / "src")
            alone = jupyter_alone(tmp, rounds)
            ours, plain, tuned = [], [], []
            with linked_server(tmp, rtt) as (env, rclone_env, _direct):
                for r in range(rounds):
                    print(f"[large] rtt {rtt * 1000:.0f} ms round {r} ...", flush=True)
                    ours.append(Start(tmp / f"ours{r}", env).run())
                    plain.append(timed_copy(rclone_env, tmp / f"plain{r}", DEFAULT_COPY, n))
                    tuned.append(timed_copy(rclone_env, tmp / f"tuned{r}", TUNED_COPY, n))
            j = statistics.median(o[0] for o in ours)
            a = statistics.median(o[1] for o in ours)
            floor = large * large_mib * MiB / DOWN
            for name, t_jupyter, t_all in (
                ("rclone-jupyter start", j, a),
                ("rclone copy (defaults), then JupyterLab", statistics.median(plain) + alone, statistics.median(plain)),
                (f"rclone copy {' '.join(TUNED_COPY)}, then JupyterLab", statistics.median(tuned) + alone,
                 statistics.median(tuned)),
            ):
                rows.append([f"{rtt * 1000:.0f}", name, f"{t_jupyter:.1f}", f"{t_jupyter - alone:+.1f}", f"{t_all:.1f}",
                             f"{floor:.1f}"])
            rows.append([f"{rtt * 1000:.0f}", "JupyterLab alone (no bucket), median", f"{alone:.1f}", "", "", ""])
    table(f"Start on a home link ({UP // MiB} MiB/s up, {DOWN // MiB} MiB/s down), a folder of {small} files of "
          f"1.5 KiB and {large} of {large_mib} MiB: time to JupyterLab answering vs time to every byte (median of "
          f"{rounds}; goal: JupyterLab within 3 s of its own start; load {load0} -> {load()})",
          ["rtt ms", "what", "JupyterLab s", "vs alone s", "all bytes s", "link floor s"], rows)


def bench_small(rtts: list[float], rounds: int, files: int) -> None:
    """Many small files: the start to a usable JupyterLab vs the same copy by a tuned rclone, plus JupyterLab."""
    rows = []
    load0 = load()
    for rtt in rtts:
        with tempfile.TemporaryDirectory(prefix="rj-realstart-small-") as tmp:
            tmp = Path(tmp)
            make_tree(tmp / "src", files, 1536)
            seed_bucket(tmp / "src", tmp / "s3")
            shutil.rmtree(tmp / "src")
            alone = jupyter_alone(tmp, rounds, min)  # best of, as the rows it is added to
            ours, plain, tuned = [], [], []
            with linked_server(tmp, rtt) as (env, rclone_env, _direct):
                for r in range(rounds):
                    print(f"[small] rtt {rtt * 1000:.0f} ms round {r} ...", flush=True)
                    ours.append(Start(tmp / f"ours{r}", env).run()[0])
                    tuned.append(timed_copy(rclone_env, tmp / f"tuned{r}", TUNED_COPY, files))
                    if r == 0:  # rclone's defaults are slow at 60 ms: once is enough
                        plain.append(timed_copy(rclone_env, tmp / f"plain{r}", DEFAULT_COPY, files))
            best_ours, best_tuned = min(ours), min(tuned) + alone
            rows.append([f"{rtt * 1000:.0f}", f"{files:,}", f"{AWS_S3_SYNC_3000_AT_60MS:.1f}" if rtt == 0.06 else "",
                         f"{plain[0] + alone:.1f}", f"{best_tuned:.1f}", f"{best_ours:.1f}",
                         f"{best_ours / best_tuned:.2f}x", " / ".join(f"{o:.1f}" for o in ours), f"{alone:.1f}"])
    table(f"Start of many small files (1.5 KiB) to a usable JupyterLab, {UP // MiB} MiB/s up, {DOWN // MiB} MiB/s "
          f"down (peers: the copy + JupyterLab's own start; best of {rounds}; goal <= 1.2x the tuned copy; "
          f"`aws s3 sync` from the issue, not measured here; load {load0} -> {load()})",
          ["rtt ms", "files", "aws s3 sync s (issue)", "rclone copy (defaults) s", f"rclone copy {' '.join(TUNED_COPY)} s",
           "rclone-jupyter s", "ratio", "all runs ours s", "JupyterLab alone s"], rows)


def linked_engine(env: dict[str, str], data: Path, state: Path):
    """An Engine exactly as `rclone-jupyter start` builds it, through the link."""
    from rclone_jupyter.config import settings as settings_mod
    from rclone_jupyter.daemon.supervisor import make_engines, prepare

    full = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    full.update(env, RCLONE_JUPYTER_DATA_DIR=str(data), RCLONE_JUPYTER_STATE_DIR=str(state))
    settings = settings_mod.load(full)
    state_dir, binary = prepare(settings, full)
    return make_engines(settings, state_dir, binary, full)[0]


def bench_reconcile(rtts: list[float], files: int) -> None:
    """Files made elsewhere (a venv installed from another machine) brought in by one reconcile."""
    rows = []
    load0 = load()
    for rtt in rtts:
        with tempfile.TemporaryDirectory(prefix="rj-realstart-reconcile-") as tmp:
            tmp = Path(tmp)
            (tmp / "s3" / "bucket" / FOLDER).mkdir(parents=True)
            (tmp / "s3" / "bucket" / FOLDER / "notebook.ipynb").write_text("{}")
            make_tree(tmp / "elsewhere", files, 1536)
            with linked_server(tmp, rtt) as (env, rclone_env, direct):
                engine = linked_engine(env, tmp / "data", tmp / "state")
                engine.restore()
                engine.establish()
                subprocess.run([RCLONE, "copy", str(tmp / "elsewhere"), f"bench:bucket/{FOLDER}", "--transfers", "32"],
                               env=direct, check=True, capture_output=True)
                print(f"[reconcile] rtt {rtt * 1000:.0f} ms ...", flush=True)
                started = time.monotonic()
                result = engine.reconcile()
                ours = time.monotonic() - started
                engine.rclone.close()
                if result.pulled != files:
                    raise RuntimeError(f"the reconcile brought {result.pulled} files, not {files}")
                tuned = timed_copy(rclone_env, tmp / "tuned", TUNED_COPY, files + 1)
            rows.append([f"{rtt * 1000:.0f}", f"{files:,}", f"{ours:.1f}", f"{tuned:.1f}", f"{ours / tuned:.2f}x"])
    table(f"{files:,} files of 1.5 KiB made elsewhere, brought in by one reconcile (`Engine.reconcile`, as the "
          f"periodic one and `sync --once` run it) vs a tuned copy of the folder, {UP // MiB} MiB/s up, "
          f"{DOWN // MiB} MiB/s down (load {load0} -> {load()})",
          ["rtt ms", "files", "reconcile s", f"rclone copy {' '.join(TUNED_COPY)} s", "ratio"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    every = ["large", "small", "reconcile"]
    parser.add_argument("what", nargs="*", choices=[*every, []], help="tables to print (default: both)")
    parser.add_argument("--rtts", default="0,60", help="round-trip times in ms")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", type=int, default=300, help="small files beside the large ones in `large`")
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--large-mib", type=int, default=32)
    parser.add_argument("--small-files", type=int, default=3000, help="files in `small`")
    parser.add_argument("--reconcile-files", type=int, default=1000, help="files made elsewhere in `reconcile`")
    args = parser.parse_args(argv)
    print(f"rclone-jupyter real-link start benchmarks ({code_version()}); rclone at {RCLONE}; {os.cpu_count()} CPUs "
          f"shared with other work; load {load()}", flush=True)
    rtts = [float(x) / 1000 for x in args.rtts.split(",")]
    args.what = args.what or every
    if "large" in args.what:
        bench_large(rtts, args.rounds, args.small, args.large, args.large_mib)
    if "small" in args.what:
        bench_small(rtts, args.rounds, args.small_files)
    if "reconcile" in args.what:
        bench_reconcile(rtts, args.reconcile_files)


if __name__ == "__main__":
    main()
