"""The manifest (`.rclone-jupyter/tree.json`: file modes and empty folders) comes from the bucket, so it is
untrusted input: whoever can write the bucket must not reach outside the data folder through it, set setuid
bits, exhaust the memory or stop every start. And another container's first manifest is merged, not erased.

The hostile bucket is made through the S3 API (boto3), on both S3 servers.
"""

from __future__ import annotations

import json

import pytest

from conftest import wait_until
from hostile_fixtures import S3Api, mode, warnings
from rclone_jupyter.model.manifest import MANIFEST, MAX_BYTES


def test_a_hostile_manifest_touches_nothing_outside_the_data_folder(s3, daemons, tmp_path):
    outside = tmp_path / "outside"
    (outside / "empty-a").mkdir(parents=True)
    (outside / "empty-b").mkdir()
    (outside / "victim.sh").write_text("#!/bin/sh\n")
    (outside / "victim.sh").chmod(0o644)
    api = S3Api(s3)
    api.put("run.sh", b"#!/bin/sh\necho hi\n")
    api.put("notes.txt", b"notes")
    api.put(MANIFEST, json.dumps({"version": 1, "modes": {
        "run.sh": "6777", "notes.txt": "0640", str(outside / "victim.sh"): "4777", "../outside/victim.sh": "4777",
    }, "folders": [str(outside / "empty-a"), "../outside/empty-b", "kept-empty"]}).encode())

    daemon = daemons(s3.env()).start()
    data = daemon.data
    assert mode(data / "run.sh") == 0o777  # the permission bits, never setuid or setgid
    assert mode(data / "notes.txt") == 0o640
    assert (data / "kept-empty").is_dir()
    assert mode(outside / "victim.sh") == 0o644
    assert len(warnings(daemon.log(), "tree.json")) == 1

    # Another writer's manifest drops every folder (and has the wrong type there): the daemon removes its own
    # empty folder as told, and nothing it never held.
    api.put(MANIFEST, json.dumps({"version": 1, "modes": {}, "folders": "abc"}).encode())
    assert daemon.cli("sync", "--once").returncode == 0
    wait_until(lambda: not (data / "kept-empty").exists(), message="the kept folder gone as the manifest says")
    assert (outside / "empty-a").is_dir() and (outside / "empty-b").is_dir()
    assert not any((data / name).exists() for name in "abc")
    assert mode(outside / "victim.sh") == 0o644
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()


@pytest.mark.parametrize("body", [b"[" * 200_000, b'{"modes": {}, "pad": "' + b"x" * (MAX_BYTES + 10) + b'"}'],
                         ids=["nested", "too-big"])
def test_a_manifest_nested_too_deep_or_too_big_is_refused_with_one_warning_and_the_start_goes_on(
        s3, daemons, body):
    api = S3Api(s3)
    api.put("notebook.ipynb", b'{"cells": []}')
    api.put(MANIFEST, body)
    daemon = daemons(s3.env()).start()
    assert (daemon.data / "notebook.ipynb").read_bytes() == b'{"cells": []}'
    found = warnings(daemon.log(), "tree.json")
    assert len(found) == 1, found
    assert ("RecursionError" in found[0]) if body.startswith(b"[") else ("limit" in found[0])
    (daemon.data / "new.txt").write_text("saved after it")
    wait_until(lambda: "new.txt" in api.names(), message="a change saved after it")
    assert api.get("new.txt") == b"saved after it"
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()


def test_another_containers_first_manifest_is_merged_not_erased(s3, daemons):
    api = S3Api(s3)
    api.put("tool.sh", b"#!/bin/sh\n")
    api.put("data.txt", b"data")
    daemon = daemons(s3.env()).start()  # no manifest in the bucket yet
    data = daemon.data
    assert mode(data / "tool.sh") == 0o644

    # The other container's first manifest: tool.sh made executable there, an empty folder made there.
    api.put(MANIFEST, json.dumps({"version": 1, "modes": {"tool.sh": "0755"}, "folders": ["from-b"]}).encode())
    assert daemon.cli("sync", "--once").returncode == 0
    wait_until(lambda: mode(data / "tool.sh") == 0o755, message="the other container's mode applied here")
    assert (data / "from-b").is_dir()

    (data / "data.txt").chmod(0o600)  # a mode changed here: our manifest is written, with theirs in it
    wait_until(lambda: json.loads(api.get(MANIFEST)).get("modes", {}).get("data.txt") == "0600",
               message="our manifest written")
    written = json.loads(api.get(MANIFEST))
    assert written["modes"] == {"tool.sh": "0755", "data.txt": "0600"}
    assert written["folders"] == ["from-b"]
    assert daemon.stop() == 0
