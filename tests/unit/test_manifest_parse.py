"""model/manifest.parse: the manifest from the bucket is untrusted input (the data-path side is in
tests/integration/test_hostile_manifest.py)."""

from __future__ import annotations

import json

import pytest

from rclone_jupyter.model.manifest import MAX_BYTES, parse


def test_parse_keeps_relative_names_and_permission_bits_only():
    parsed = parse(json.dumps({"modes": {"run.sh": "6777", "ok.sh": "0755", "/etc/passwd": "0644", "../x": "0777",
                                         "int.sh": 493, "weird.sh": "0o777", "a/./b": "0700"},
                               "folders": ["/tmp/outside", "../up", "kept", "a//b", 3, "\uff0e\uff0e/x"]}))
    assert parsed.modes == {"run.sh": 0o777, "ok.sh": 0o755}
    assert parsed.folders == {"kept"}
    assert len(parsed.problems) == 11  # 5 modes left out, 1 cut down, 5 folders left out


@pytest.mark.parametrize("text, why", [
    (json.dumps({"folders": "abc"}), "folders: not a JSON list"),  # not the folders a, b and c
    (json.dumps({"modes": ["a"]}), "modes: not a JSON object"),
    ("[" * 200_000, "RecursionError"),
    ("[1, 2]", "not a JSON object"),
    ("not json", "not JSON"),
    (" " * (MAX_BYTES + 1), "over 16 MiB"),
])
def test_parse_refuses_the_wrong_types_deep_nesting_and_too_much(text, why):
    parsed = parse(text)
    assert not parsed.modes and not parsed.folders
    assert len(parsed.problems) == 1 and why in parsed.problems[0]
