"""The daemon's CPU for a burst of new files (an unzip, a data set unpacked) and how often it writes its status.

    .venv/bin/python bench/burst_cpu.py                    # 10,000 and 100,000 new files, rclone serve s3
    .venv/bin/python bench/burst_cpu.py --sizes 10000

A real `rclone-jupyter start --no-jupyter` on an empty bucket folder; this script then writes N new 64-byte
files (in folders of 1,000) into the data folder as fast as it can and waits until the status says nothing is
pending. It prints the CPU of the daemon's own Python process (not rclone's: the rcd is a child, counted
apart) while the files were written and until they were saved, and the number of times status.json was
replaced (counted with inotify on the state folder). Goal (issue 18, item 11): linear, <= 5 s of CPU at
100,000, the status written at most a few times a second. Nothing asserts: it prints a table.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Daemon, _children, _cpu_seconds, _user_system_seconds, code_version, load, table  # noqa: E402
from s3count import CountingS3  # noqa: E402

IN_MOVED_TO = 0x80


class Replacements:
    """Counts files renamed into `folder` under `name` (what write_json's atomic replace does), with inotify."""

    def __init__(self, folder: Path, name: str):
        self.name, self.count = name.encode(), 0
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_CLOEXEC)
        libc.inotify_add_watch(self.fd, str(folder).encode(), IN_MOVED_TO)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            offset = 0
            while offset < len(data):
                _wd, _mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16: offset + 16 + length].rstrip(b"\0")
                offset += 16 + length
                if name == self.name:
                    self.count += 1

    def close(self) -> None:
        os.close(self.fd)


def children_cpu(pid: int) -> float:
    total = 0.0
    for child in _children(pid):
        try:
            total += _cpu_seconds(child)
        except OSError:
            continue
    return total


def one_burst(n: int) -> list:
    load0 = load()
    with tempfile.TemporaryDirectory(prefix="rj-burstcpu-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        (tmp / "s3" / "bucket").mkdir(parents=True)
        with CountingS3(tmp / "s3") as s3:
            daemon = Daemon(tmp, s3, data)
            daemon.start()
            pid = daemon.proc.pid
            try:
                time.sleep(2)  # let the start settle
                writes = Replacements(daemon.state, "status.json")
                cpu0, t0, user_sys0 = _cpu_seconds(pid), time.monotonic(), _user_system_seconds(pid)
                for i in range(n):
                    folder = data / f"u{i // 1000:03d}"
                    if i % 1000 == 0:
                        folder.mkdir()
                    (folder / f"f{i:06d}.txt").write_bytes(i.to_bytes(8, "big") * 8)
                cpu_written, t_written = _cpu_seconds(pid) - cpu0, time.monotonic() - t0
                deadline = time.monotonic() + 3600
                while time.monotonic() < deadline:
                    status = daemon.status()
                    if status.get("pending", 1) == 0 and status.get("last_sync"):
                        break
                    time.sleep(0.2)
                else:
                    raise TimeoutError("the burst was never saved")
                cpu_saved, t_saved = _cpu_seconds(pid) - cpu0, time.monotonic() - t0
                user_saved, sys_saved = (t - t0_ for t, t0_ in zip(_user_system_seconds(pid), user_sys0))
                rclone_cpu = children_cpu(pid)
                saved = sum(1 for _ in (tmp / "s3" / "bucket" / "bench").rglob("f*.txt"))
                writes.close()
            finally:
                code = daemon.stop()
    return [f"{n:,}", f"{t_written:.1f}", f"{cpu_written:.1f}", f"{t_saved:.1f}", f"{cpu_saved:.1f}",
            f"{user_saved:.1f} / {sys_saved:.1f}", f"{cpu_saved / n * 1e6:.0f}", f"{writes.count}",
            f"{writes.count / t_saved:.1f}",
            f"{rclone_cpu:.1f}", f"{saved:,}", code, f"{load0} -> {load()}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated numbers of new files")
    args = parser.parse_args()
    print(code_version(), flush=True)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        print(f"[burst-cpu] N={n:,} ...", flush=True)
        rows.append(one_burst(n))
    table("A burst of new files into a running daemon's data folder (rclone serve s3): the daemon's own CPU",
          ["new files", "written in s", "daemon CPU s meanwhile", "saved after s", "daemon CPU s until saved",
           "of it user / system s", "CPU us per file", "status.json writes", "writes per s",
           "rcd CPU s (still running)", "in bucket",
           "exit", "load"], rows)


if __name__ == "__main__":
    main()
