"""`rclone bisync` as the sync: RCLONE_JUPYTER_PUSH_MODE=bisync, and `sync --once` with no `start` running.

The default mode (engine/modes.py) does not need it: it restores with one copy, knows the bucket from listings
and pushes exactly what changed. This module keeps bisync for users who want rclone's own two-way sync, and
for a one-off sync from a shell where no daemon holds the baseline. It handles bisync's safety guards on
purpose:

- a guard tripped by changes this container made (the watcher saw them) is passed with --force;
- deletions on the bucket side beyond the guard, or changes here the watcher never saw, are not propagated:
  bisync's baseline is rebuilt as the union of both sides (nothing deleted, nothing lost), with an ERROR;
- a run that asks for --resync (an empty side, lost listings) gets the same union rebuild.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rclone_jupyter.engine.push import Pusher, not_deleting
from rclone_jupyter.engine.reconcile import disappeared
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.local.tree import walk_versions
from rclone_jupyter.logs import human_size
from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.model.known import Version, covered
from rclone_jupyter.model.trash import DELETED, TRASH, folder_of
from rclone_jupyter.rclone import commands
from rclone_jupyter.rclone.bisync_report import BisyncReport, parse_listing
from rclone_jupyter.rclone.store import RcloneStore

log = logging.getLogger(__name__)


class Bisync:
    """bisync runs against one remote, with its listings in `workdir` (they are its baseline between runs)."""

    def __init__(self, store: RcloneStore, baseline: Baseline, data_dir: Path, workdir: Path, pusher: Pusher,
                 pending_here: Callable[[], set[str]] = set):
        self.store = store
        self.known = baseline
        self.data_dir = data_dir
        self.workdir = workdir
        self.pusher = pusher  # for a delete of what the watcher saw deleted, before a rebuild
        self.pending_here = pending_here  # the data folder paths changed here and not pushed yet
        self._keep_into: str | None = None  # the trash folder of the current run (reconcile's `keep`)

    def baseline(self, *, prefer_local: bool = False) -> None:
        """Establish bisync's baseline: the union of both sides. Never deletes on either side."""
        self._bisync(resync=True, what="baseline", resync_mode="path1" if prefer_local else "newer")

    def reconcile(self, extra_observed: Iterable[str] = (), *, keep: bool = False) -> None:
        """Full two-way sync with the bucket (bisync), with its guards handled as the module says. `keep`: what
        it deletes or overwrites in the bucket is kept in the trash first (one folder for the run: bisync does
        not say which were deletes, so all are listed as deleted; their mode is not known: 0644)."""
        self._keep_into = self.store.remote.path(f"{TRASH}/{folder_of(time.time_ns(), DELETED, 0o644)}") \
            if keep else None
        report = BisyncReport()
        try:
            self._bisync(resync=False, what="reconcile", report=report)
        except RcloneError:
            # Paths changed here and still queued count as seen: a delete queued behind this run is not "unseen",
            # and must not make the union rebuild bring the file back. Read once the run is over: a delete made
            # just before it (`rm a b`) may reach the watcher while bisync lists the data folder.
            observed = set(extra_observed) | self.pending_here()
            if report.guards:
                self._after_guard(report, observed)
            elif report.needs_resync:
                self._before_rebuild(report, observed)
                self._bisync(resync=True, what="baseline")
            else:
                raise

    def _before_rebuild(self, report: BisyncReport, observed: set[str]) -> None:
        """bisync stops when a side is empty, and its rebuild (the union of both sides) would undo deletions.

        - The data folder is empty: the user deleted everything on purpose. The deletions the watcher saw are
          applied to the bucket first (only objects we knew), so the union does not bring them back.
        - The bucket folder is empty but we knew files in it: it was emptied from outside. Nothing is deleted
          here; the union uploads the local copies again, and this is reported as an ERROR.
        """
        doomed: list[str] = []
        if "Path1" in report.empty_side and not walk_versions(self.data_dir):
            doomed, changed = self.pusher.still_as_known(sorted(self.pusher.known_under(observed)))
            if changed:
                not_deleting(self.store, changed)
        if doomed:
            self.pusher.delete_known(doomed)
            log.info("the data folder is empty: deleted the %d file(s) deleted here from %s too", len(doomed),
                     self.store.display)
        if "Path2" in report.empty_side and self.known:
            disappeared(self.store, sorted(self.known), every=True)
        else:
            log.info("bisync asked for a new baseline (%s); rebuilding it as the union of both sides",
                     ", ".join(sorted(report.empty_side)) or "lost listing")

    def dry_run(self) -> list[str]:
        """What the next bisync would copy and delete (`rclone bisync --dry-run`), as lines. Changes nothing in
        the data folder, the bucket or bisync's listings."""
        argv = commands.bisync(self.data_dir, self.store.remote.path(), self.workdir,
                               resync=not self.has_baseline(), dry_run=True)
        lines: list[str] = []
        toward = ""

        def feed(record: dict) -> None:
            nonlocal toward
            text = record.get("msg", "")  # no colour codes: --color NEVER
            # "Do queued copies to - Path1", "Resync is copying files to - Path2": the side the next actions touch.
            if " to " in text and text.rstrip().endswith(("Path1", "Path2")):
                toward = "the data folder" if text.rstrip().endswith("Path1") else "the bucket"
            verb = record.get("skipped")
            if verb and record.get("object"):
                where = f" ({'to' if verb == 'copy' else 'in'} {toward})" if toward else ""
                lines.append(f"{verb} {record['object']}{where}")

        self.store.run(argv, "dry run", on_message=feed, retry=False, before=self._clear_stale_locks)
        return lines

    def _after_guard(self, report: BisyncReport, observed: set[str]) -> None:
        unseen_here = [p for p in report.paths("Path1") if not covered(p, observed)]
        if report.guard_on("Path2", "too many deletes"):
            disappeared(self.store, report.paths("Path2", "deleted"))
            self._bisync(resync=True, what="baseline")
        elif unseen_here and report.guard_on("Path1", "too many deletes"):
            log.error(
                "%d change(s) in %s were not seen by the watcher (e.g. %s); not propagating deletions that were "
                "not observed. Rebuilding the baseline as the union of both sides.",
                len(unseen_here), self.data_dir, ", ".join(unseen_here[:5]))
            self._bisync(resync=True, what="baseline")
        else:
            # Guards tripped by what we did ourselves (the watcher saw it), or 'all files changed' on a small
            # tree: bisync's own conflict handling keeps both versions of anything changed on both sides.
            log.info("bisync safety check tripped on a small or fully changed tree (%s); the changes are ours, "
                     "running it with --force", ", ".join(f"{k} on {s}" for k, s in sorted(report.guards)))
            self._bisync(resync=False, force=True, what="reconcile")

    def _bisync(self, *, resync: bool, what: str, force: bool = False, report: BisyncReport | None = None,
                resync_mode: str = "newer") -> None:
        argv = commands.bisync(self.data_dir, self.store.remote.path(), self.workdir, resync=resync, force=force,
                               resync_mode=resync_mode, keep_into=None if resync else self._keep_into)

        def feed(record: dict) -> None:
            if report is not None:
                # In JSON logs rclone puts a message's subject (e.g. "Safety abort") in "object".
                subject = record.get("object")
                report.feed(f"{subject}: {record.get('msg', '')}" if subject else record.get("msg", ""))

        # With a report, one attempt: the caller reads the report of this very run.
        run = self.store.run(argv, what, on_message=feed, retry=report is None, before=self._clear_stale_locks)
        self._load_known()
        stats = run.stats
        log.info("%s with %s: %d transferred, %d deleted, %s, %.1f s", what, self.store.display,
                 stats.get("transfers", 0), stats.get("deletes", 0), human_size(stats.get("bytes", 0)), run.elapsed)

    def _clear_stale_locks(self) -> None:
        # We hold our own lock on this remote, so no other bisync can be running with this workdir: a lock
        # file left here is from a killed run, and would block every run after it.
        for lck in self.workdir.glob("*.lck"):
            lck.unlink(missing_ok=True)

    def has_baseline(self) -> bool:
        return bool(list(self.workdir.glob("*.path2.lst")))

    def _load_known(self) -> None:
        listings = sorted(self.workdir.glob("*.path2.lst"))
        if listings:
            self.known.replace({path: Version(*v) for path, v
                                    in parse_listing(listings[-1].read_text(errors="replace")).items()})

