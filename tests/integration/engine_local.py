"""An Engine against rclone's local backend: a real rclone over a real folder that stands in for the bucket.

The store (rclone/store.py) is the very one the product uses; only its remote is `type = local`. So the
engine's rules run in-process, without a storage server, at the cost of a few rclone runs per test.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import RCLONE
from rclone_jupyter.config.remotes import Remote
from rclone_jupyter.engine.core import Engine
from rclone_jupyter.model.changes import Batch
from rclone_jupyter.rclone.runner import Rclone
from rclone_jupyter.state import StateDir


@pytest.fixture(autouse=True)
def stop_rcd():
    """The engines a test appends here have their rcd stopped at its end (import it into the test module)."""
    engines = []
    yield engines
    for engine in engines:
        engine.rclone.close()


class LocalBucket:
    """The bucket folder as plain files, to change it 'from elsewhere' and to look at it."""

    def __init__(self, root: Path):
        self.root = root

    def put(self, rel: str, content: bytes, mtime: float | None = None) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if mtime is not None:
            os.utime(path, (mtime, mtime))

    def delete(self, rel: str) -> None:
        (self.root / rel).unlink()

    def files(self) -> dict[str, bytes]:
        out = {}
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                full = Path(dirpath) / name
                rel = str(full.relative_to(self.root))
                if not rel.startswith(".rclone-jupyter/"):
                    out[rel] = full.read_bytes()
        return out


def local_engine(tmp_path: Path, bucket: Path | None = None, **kwargs) -> tuple[Engine, LocalBucket]:
    """An engine with its own data and state folders, on the bucket folder `bucket` (a new one if None)."""
    state = StateDir(tmp_path / "state").ensure()
    state.config_path.write_text("[bucket]\ntype = local\n")
    root = bucket or tmp_path / "bucket" / "folder"
    root.mkdir(parents=True, exist_ok=True)
    remote = Remote(name="bucket", provider="local", root=str(root), options={}, display="the local bucket")
    engine = Engine(Rclone(RCLONE, state.config_path), remote, tmp_path / "data", state, **kwargs)
    return engine, LocalBucket(root)


def started(tmp_path: Path, files: dict[str, bytes] | None = None, **kwargs) -> tuple[Engine, LocalBucket]:
    """An engine restored and established from a bucket folder holding `files` (an hour old)."""
    engine, bucket = local_engine(tmp_path, **kwargs)
    for rel, content in (files or {}).items():
        bucket.put(rel, content, mtime=time.time() - 3600)
    engine.restore()
    engine.establish()
    return engine, bucket


def write(engine: Engine, rel: str, content: bytes, mtime: float | None = None) -> None:
    path = engine.data_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def push(engine: Engine, *rels: str):
    return engine.push(Batch(frozenset(rels)))
