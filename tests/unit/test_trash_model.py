"""The trash's names and rules (model/trash.py), one rule a test: pure functions, no server."""

from __future__ import annotations

import pytest

from rclone_jupyter.model import trash
from rclone_jupyter.model.trash import DELETED, REPLACED, Kept

S = 1_000_000_000
T0 = 1_796_000_000 * S  # 2026-11-29T...: any fixed time; nothing here reads the clock


def kept(key: str, at: float, kind: str = DELETED, mode: int = 0o644, size: int = 1) -> Kept:
    return Kept(T0 + int(at * S), key, kind, mode, size)


# -- names ---------------------------------------------------------------------------------------------------

def test_a_name_encodes_time_kind_mode_and_the_object_name():
    version = Kept(T0 + 123_000_000, "project/run.sh", DELETED, 0o755)
    assert version.name == f"{trash.folder_of(T0, DELETED, 0o755)[:15]}.123Z-deleted-0755/project/run.sh"
    assert version.name.startswith(trash.show_time(T0).replace("-", "").replace(":", "")[:15])


def test_a_name_parses_back_to_the_same_version():
    for version in (Kept(T0 + 7_000_000, "a/b c.txt", REPLACED, 0o600, 12),
                    Kept(T0, "x.rclonelink", DELETED, 0o644, 3),
                    Kept(T0 + 999_000_000, "line\u240abreak", DELETED, 0o4755, 0)):
        assert trash.parse(version.name, version.size) == version


def test_names_sort_by_time():
    names = [kept("b", s).name for s in (0.001, 1, 59, 3600, 86_400 * 3)]
    assert sorted(names) == names


def test_a_name_that_is_not_a_kept_version_is_ignored():
    for name in ("notes.txt", "20261201T204200.123Z-deleted-0644", "20261201T204200Z-deleted-0644/a",
                 "20261201T204200.123Z-gone-0644/a", "20261201T204200.123Z-deleted-0999/a"):
        assert trash.parse(name) is None


def test_a_link_is_kept_under_its_link_object_and_recovered_at_the_link_path():
    version = kept("bin/tool.rclonelink", 0)
    assert version.name.endswith("/bin/tool.rclonelink")
    assert version.path == "bin/tool"


def test_a_control_character_stays_in_its_encoded_form_and_decodes_to_the_path():
    version = kept("a\u240ab.txt", 0)
    assert "\n" not in version.name
    assert version.path == "a\nb.txt"


def test_a_version_whose_full_name_is_too_long_does_not_fit():
    assert trash.fits("bucket/folder", kept("a" * 900, 0))
    assert not trash.fits("bucket/folder", kept("a" * 990, 0))


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        trash.folder_of(T0, "moved", 0o644)


# -- which overwrite is kept (KEEP_EVERY) -------------------------------------------------------------------

def test_a_first_overwrite_is_kept():
    assert trash.overwrites_to_keep(["a"], {}, T0, 600) == {"a"}


def test_an_overwrite_within_keep_every_of_the_last_kept_one_is_not_kept():
    assert trash.overwrites_to_keep(["a"], {"a": T0}, T0 + 599 * S, 600) == set()


def test_an_overwrite_keep_every_after_the_last_kept_one_is_kept():
    assert trash.overwrites_to_keep(["a"], {"a": T0}, T0 + 600 * S, 600) == {"a"}


def test_the_rule_is_per_file():
    assert trash.overwrites_to_keep(["a", "b"], {"a": T0}, T0 + S, 600) == {"b"}


def test_keep_every_zero_keeps_every_overwrite():
    assert trash.overwrites_to_keep(["a"], {"a": T0}, T0, 0) == {"a"}


def test_the_newest_kept_overwrite_per_file_is_read_from_a_listing_and_deletes_do_not_count():
    versions = [kept("a", 0, REPLACED), kept("a", 30, REPLACED), kept("a", 60, DELETED), kept("b", 5, DELETED)]
    assert trash.newest_overwrites(versions) == {"a": T0 + 30 * S}


# -- expiry (KEEP_DAYS) ---------------------------------------------------------------------------------------

def test_a_version_older_than_keep_days_expires():
    old, young = kept("a", 0), kept("b", 1)
    assert trash.expired([young, old], T0 + 7 * 86_400 * S + S // 2, 7) == [old]


def test_a_version_exactly_keep_days_old_is_still_kept():
    assert trash.expired([kept("a", 0)], T0 + 7 * 86_400 * S, 7) == []


def test_expiry_applies_to_deletes_and_overwrites_alike():
    versions = [kept("a", 0, DELETED), kept("a", 1, REPLACED)]
    assert trash.expired(versions, T0 + 86_400 * S + 2 * S, 1) == sorted(versions)


# -- history --------------------------------------------------------------------------------------------------

def test_history_is_newest_first():
    versions = [kept("a", 1), kept("a", 3), kept("b", 2)]
    assert [v.at_ns for v in trash.history(versions)] == [T0 + 3 * S, T0 + 2 * S, T0 + S]


def test_history_of_a_folder_has_what_is_under_it_and_not_a_sibling_with_the_same_start():
    versions = [kept("p/a", 1), kept("p/q/b", 2), kept("pp/c", 3), kept("p", 4)]
    assert {v.key for v in trash.history(versions, "p/")} == {"p/a", "p/q/b", "p"}


# -- recover --------------------------------------------------------------------------------------------------

def nothing_there(_rel: str) -> bool:
    return False


def test_recover_of_a_file_brings_its_newest_version():
    versions = [kept("a", 1, REPLACED), kept("a", 900, DELETED), kept("b", 1000)]
    steps = trash.recover_plan(versions, "a", exists=nothing_there)
    assert [(s.version.at_ns, s.target) for s in steps] == [(T0 + 900 * S, "a")]


def test_recover_at_a_time_brings_the_version_kept_then_to_the_second():
    versions = [kept("a", 1.25, REPLACED), kept("a", 900, DELETED)]
    steps = trash.recover_plan(versions, "a", at_ns=T0 + 1 * S, exists=nothing_there)
    assert [s.version for s in steps] == [versions[0]]


def test_recover_before_any_version_is_an_empty_plan():
    assert trash.recover_plan([kept("a", 10)], "a", at_ns=T0, exists=nothing_there) == []


def test_recover_of_a_folder_brings_every_file_of_its_last_deletion_and_not_an_older_one():
    versions = [kept("p/old", 0), kept("p/a", 1000), kept("p/q/b", 1030), kept("p/c", 1050),
                kept("p/a", 1040, REPLACED), kept("other/x", 1050)]
    steps = trash.recover_plan(versions, "p", exists=nothing_there)
    assert [(s.target, s.version.at_ns) for s in steps] == [
        ("p/a", T0 + 1000 * S), ("p/c", T0 + 1050 * S), ("p/q/b", T0 + 1030 * S)]


def test_recover_of_a_folder_at_a_time_brings_that_deletion():
    versions = [kept("p/old", 0), kept("p/a", 1000)]
    steps = trash.recover_plan(versions, "p", at_ns=T0 + 10 * S, exists=nothing_there)
    assert [s.target for s in steps] == ["p/old"]


def test_recover_keeps_a_file_that_exists_now_as_a_conflict_copy_first():
    steps = trash.recover_plan([kept("a", 1), kept("b", 1)], "", exists=lambda rel: rel == "a")
    assert [(s.target, s.aside) for s in steps] == [("a", True), ("b", False)]


def test_recover_of_a_name_nothing_was_kept_of_is_an_empty_plan():
    assert trash.recover_plan([kept("a", 1)], "b", exists=nothing_there) == []


# -- times as people type them -----------------------------------------------------------------------------

def test_a_time_as_history_shows_it_reads_back():
    assert trash.parse_time(trash.show_time(T0 + 123_000_000)) == T0


def test_a_time_without_zone_is_utc_and_a_zone_is_honoured():
    assert trash.parse_time("2026-12-01 20:42") == trash.parse_time("2026-12-01T20:42:00Z")
    assert trash.parse_time("2026-12-01T21:42:00+01:00") == trash.parse_time("2026-12-01T20:42:00Z")


def test_a_trash_folder_stamp_is_a_time_too():
    assert trash.parse_time("20261201T204200.123Z") == trash.parse_time("2026-12-01T20:42:00.123Z")


def test_a_time_that_is_none_is_refused_with_an_example():
    with pytest.raises(ValueError, match="2026-12-01T20:42:05Z"):
        trash.parse_time("yesterday")


def test_merged_shows_a_version_kept_by_several_clouds_once_naming_each():
    from rclone_jupyter.model.trash import SAME_DELETION_NS, merged

    t = 1_800_000_000 * 10**9
    first = [Kept(t, "a.txt", DELETED, 0o644, 3), Kept(t, "b.txt", REPLACED, 0o644, 5)]
    # The second cloud's push came a moment later; it also kept an older overwrite of b the first one expired.
    second = [Kept(t + 2 * 10**9, "a.txt", DELETED, 0o644, 3), Kept(t - 10**12, "b.txt", REPLACED, 0o644, 5)]
    out = merged([first, second])
    assert sorted((v.key, v.at_ns, held) for v, held in out) == [
        ("a.txt", t, [0, 1]), ("b.txt", t - 10**12, [1]), ("b.txt", t, [0])]
    # Outside the window, or another size: another version.
    late = [Kept(t + SAME_DELETION_NS + 1, "a.txt", DELETED, 0o644, 3), Kept(t, "b.txt", REPLACED, 0o644, 6)]
    assert all(held in ([0], [1]) for _v, held in merged([first, late]))
    assert len(merged([first, late])) == 4
    # One cloud's two versions of one file are never taken for one.
    twice = [Kept(t, "a.txt", DELETED, 0o644, 3), Kept(t + 10**9, "a.txt", DELETED, 0o644, 3)]
    assert len(merged([twice, twice])) == 2
