"""The shapes that keep a million objects affordable (issue 18, item 12): the listing read line by line, the
baseline packed, the reconcile looking only at what a listing shows changed, cannot_hold once per folder.
Figures live in bench/scale.py; these check that the compact forms answer exactly as the plain ones did."""

from __future__ import annotations

import io
import random

import pytest

from rclone_jupyter.errors import RcloneError
from rclone_jupyter.local.tree import MAX_LINK_TARGET, cannot_hold
from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.model.known import LINK_SUFFIX, Known, Version, ancestors, unrepresentable
from rclone_jupyter.model.reconcile_plan import remote_change
from rclone_jupyter.model.stamps import _stamp_ns, stamp_ns
from rclone_jupyter.rclone.listing import read_listing
from rclone_jupyter.rclone.runner import Rclone


# -- the listing, as `rclone lsf --csv --format pst --time-format unixnano` prints it ---------------------------


def test_the_listing_is_read_line_by_line_with_quoted_names_kept_whole():
    text = ('a.txt,8,1796686334221379920\r\n'  # a line end as printed is no part of the name
            '"dir/co,mma ""q"".txt",6,-2147483648000000000\n'
            '"line\nbreak and\rreturn",0,1\n'
            ' lead,1,2\n')
    listing = read_listing(io.StringIO(text, newline=""))
    assert listing == {"a.txt": (8, 1796686334221379920), 'dir/co,mma "q".txt': (6, -2147483648000000000),
                       "line\nbreak and\rreturn": (0, 1), " lead": (1, 2)}
    assert all(type(v) is Version for v in listing.values())


def test_a_listing_line_of_another_shape_is_an_error_not_a_missing_object():
    with pytest.raises(ValueError):
        read_listing(io.StringIO("a.txt,8\n", newline=""))


# -- the baseline, packed ----------------------------------------------------------------------------------


def test_the_baseline_gives_back_every_known_as_it_was_recorded():
    far = 2**63 + 5  # a file dated past 2262: out of 64 bits, kept whole
    cases = {"a": (Version(4096, 1_700_000_000_123_456_789), None),
             "b": (Version(0, -5), Version(3, 1_700_000_000_000_000_000)),
             "c": (Version(7, far), Version(7, far)),
             "d": (Version(2**40, 1), Version(2**40, far))}
    baseline = Baseline()
    for key, (version, listed) in cases.items():
        baseline.record(key, version, listed)
    for key, (version, listed) in cases.items():
        assert baseline[key] == Known(version.size, version.mtime_ns, listed)
        assert type(baseline[key].listed) is (Version if listed is not None else type(None))
    baseline.adopt("a", Version(4096, 9))
    assert baseline["a"] == Known(4096, 1_700_000_000_123_456_789, Version(4096, 9))
    assert Baseline(dict(baseline)) == baseline and dict(Baseline(dict(baseline))) == dict(baseline)
    baseline.forget(["a", "x"])
    assert "a" not in baseline and len(baseline) == 3 and sorted(baseline) == ["b", "c", "d"]


def test_a_known_object_has_no_per_instance_dict():
    assert not hasattr(Known(1, 2), "__dict__")  # one made per read: it must stay small anyway


def test_unsettled_is_every_name_remote_change_says_something_about():
    rng = random.Random(18)
    known, listing = {}, {}
    for i in range(3000):
        key = f"d{i % 7}/f{i}"
        version = Version(rng.randrange(5), rng.randrange(3))
        listed = rng.choice([None, Version(rng.randrange(3), rng.randrange(3))])
        if rng.random() < 0.8:
            known[key] = Known(*version, listed)
        if rng.random() < 0.8:
            listing[key] = rng.choice([listed or version, Version(rng.randrange(3), rng.randrange(3))])
    known["far"] = Known(1, 2**64, Version(1, 2**64))  # kept whole
    listing["far"] = Version(1, 2**64)
    expected = {key for key in known.keys() | listing.keys()
                if remote_change(known.get(key), listing.get(key)) is not None}
    assert Baseline(known).unsettled(listing) == expected
    assert "far" not in expected and len(expected) > 100


# -- cannot_hold: once per folder, the same answers as once per object ------------------------------------------


def _cannot_hold_one_by_one(sizes: dict[str, int]) -> dict[str, str]:
    """The rules of cannot_hold applied to each name with every folder of its way (the plain way)."""
    links = {name[: -len(LINK_SUFFIX)] for name in sizes if name.endswith(LINK_SUFFIX)}
    folders = {folder for name in sizes for folder in ancestors(name)}
    out = {}
    for name, size in sizes.items():
        why = unrepresentable(name) or next(
            (f"{folder} is a symbolic link in the bucket folder (nothing is written through one)"
             for folder in ancestors(name) if folder in links), None)
        if not why and name in folders:
            why = f"other objects use it as a folder ({name}/...), which is what is restored"
        if not why and name.endswith(LINK_SUFFIX) and not 0 < size <= MAX_LINK_TARGET:
            why = f"a link object must hold a target of 1 to {MAX_LINK_TARGET:,} bytes; it has {size}"
        if why:
            out[name] = why
    return out


def test_cannot_hold_answers_as_the_rules_do_name_by_name():
    rng = random.Random(12)
    parts = ["a", "b", "c", ".", "..", "", "x" * 70, "é" * 64, "n\x00", "\uff0e", "l"]
    sizes = {}
    for _ in range(4000):
        name = "/".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.15:
            name += LINK_SUFFIX
        sizes[name] = rng.choice([0, 1, 5, MAX_LINK_TARGET + 1])
    sizes.update({LINK_SUFFIX: 3, "top": 1, "a/b": 1, "a/b/c": 1, "l" + LINK_SUFFIX: 2, "l/x": 1})
    expected = _cannot_hold_one_by_one(sizes)
    assert cannot_hold({k: Version(s, 0) for k, s in sizes.items()}) == expected
    assert "top" not in expected and "l/x" in expected and "a/b" in expected
    keep = lambda name: not name.startswith("a/")  # noqa: E731
    assert cannot_hold({k: Version(s, 0) for k, s in sizes.items()}, keep) == _cannot_hold_one_by_one(
        {k: s for k, s in sizes.items() if keep(k)})


@pytest.mark.parametrize("name", ["", "/a", "a/", "a//b", ".", "..", "a/./b", "a/..", "\uff0e", "a/\uff0e\uff0e/b",
                                  "a\x00b", "é" * 128, "x" * 256, "a/.b", "...", "x" * 255, "é" * 127])
def test_unrepresentable_skips_its_full_look_only_for_names_that_cannot_fail_it(name):
    parts = name.split("/")
    plain = ("bad part" if any(p in ("", ".", "..", "\uff0e", "\uff0e\uff0e") for p in parts) else
             "too long" if any(len(p.encode("utf-8", "surrogateescape")) > 255 for p in parts) else
             "NUL" if "\0" in name else None)
    assert (unrepresentable(name) is None) == (plain is None)


# -- the runner reads a listing as it comes ----------------------------------------------------------------


def _fake_rclone(tmp_path, lines: str):
    script = tmp_path / "rclone"
    script.write_text(f"#!/bin/sh\nprintf '%s' '{lines}'\n")
    script.chmod(0o755)
    return Rclone(str(script), tmp_path / "rclone.conf", env={"PATH": "/usr/bin:/bin"})


def test_a_listing_is_parsed_as_rclone_prints_it(tmp_path):
    run = _fake_rclone(tmp_path, 'a,1,2\n"b,c",3,4\n').run(("lsf",), what="listing", parse=read_listing)
    assert run.parsed == {"a": (1, 2), "b,c": (3, 4)} and run.output == ""


def test_a_listing_that_cannot_be_read_is_an_error_and_rclone_is_never_left_blocked(tmp_path):
    lines = "x,1\\n" + "a,1,2\\n" * 30_000  # far more than a pipe holds: rclone must be read to its end
    with pytest.raises(RcloneError, match="cannot be read") as caught:
        _fake_rclone(tmp_path, lines).run(("lsf",), what="listing", parse=read_listing)
    assert not caught.value.retryable


def test_compact_keeps_every_entry_and_makes_each_anew():
    baseline = Baseline()
    baseline.record("a/é\udcff", Version(1, 2), Version(1, 3))  # a lone surrogate (a name that is not UTF-8)
    baseline.record("b", Version(4, 5))
    baseline.record("far", Version(5, 2**64))  # kept whole
    before, old_names = dict(baseline), list(baseline)
    baseline.compact()
    assert dict(baseline) == before
    assert all(new is not old for new, old in zip(baseline, old_names))  # new objects, after the start's


# -- rclone's times read with integers alone ------------------------------------------------------------------


def test_stamps_read_with_integers_are_the_ones_strptime_reads():
    rng = random.Random(3339)
    for _ in range(3000):
        base = (f"{rng.randint(1, 9999):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
                f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
        offset = f"{rng.choice('+-')}{rng.randint(0, 23):02d}{rng.choice(['', ':'])}{rng.randint(0, 59):02d}"
        zone = rng.choice(["Z", offset])
        plain = f"{base}.{fraction}{zone.replace(':', '')}".replace("Z", "+0000")
        assert stamp_ns(f"{base}.{fraction}{zone}") == _stamp_ns(plain), (base, fraction, zone)
    with pytest.raises(ValueError):
        stamp_ns("2026-02-30T00:00:00.1Z")  # no such day, as before
