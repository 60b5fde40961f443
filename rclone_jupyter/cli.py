"""The command line: a thin click layer. Core modules raise typed errors; this turns them into messages."""

from __future__ import annotations

import faulthandler
import signal
import json
import logging
import os
import sys
import urllib.request
from pathlib import Path

import click

from rclone_jupyter import __version__, logs
from rclone_jupyter.config import settings as settings_mod
from rclone_jupyter.client import ControlClient
from rclone_jupyter.errors import ConfigError, DaemonNotRunning, RcloneJupyterError
from rclone_jupyter.state import StateDir, holder_pid
from rclone_jupyter.daemon.status import Phase, current as current_status, read as read_status

log = logging.getLogger("rclone_jupyter")

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(exc: RcloneJupyterError) -> None:
    if isinstance(exc, ConfigError):
        click.echo("ERROR: the configuration has problems:\n" + str(exc), err=True)
        click.echo("Fix the variables above and start again (see README.md, 'Environment variables').", err=True)
    else:
        click.echo(f"ERROR: {exc}", err=True)
    sys.exit(exc.exit_code)


def _finite(value: float, name: str) -> float:
    # click's FloatRange lets nan through (nan compares false with both bounds).
    if value != value:
        raise click.BadParameter(f"{value} is not a number of seconds", param_hint=name)
    return value


def _load(**overrides) -> settings_mod.Settings:
    try:
        return settings_mod.load(**overrides)
    except ConfigError as exc:
        logs.configure("INFO")
        _fail(exc)
        raise  # unreachable


def _state_dir() -> StateDir:
    """The state dir `start` uses, found the same way (settings.load), without needing a valid environment."""
    return StateDir(settings_mod.state_dir_from(os.environ))


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version")
def cli() -> None:
    """Run JupyterLab with its data folder continuously synced to a bucket (S3 and compatibles).

    \b
    Start everything (the container's entrypoint):
        AWS_S3_BUCKET_FOLDER=my-bucket/me AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... rclone-jupyter start
    Try it locally with a built-in S3 server and no cloud account:
        rclone-jupyter demo
    """


@cli.command(context_settings=CONTEXT)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder to serve and sync [env RCLONE_JUPYTER_DATA_DIR; default /root/data].")
@click.option("--port", type=int, default=None, help="JupyterLab's port [env JUPYTERLAB_PORT; default 8000].")
@click.option("--no-jupyter", is_flag=True, help="Only restore and sync; do not start JupyterLab.")
def start(data_dir: str | None, port: int | None, no_jupyter: bool) -> None:
    """Restore the data folder, keep it synced, and run JupyterLab (the container entrypoint).

    \b
    Order: read the environment, write the private rclone config, restore the data folder's files up to
    RCLONE_JUPYTER_LARGE_FILE (8 MiB) from the bucket, establish the sync baseline, watch for changes, start
    JupyterLab, then bring the larger files in the background (`rclone-jupyter wait` waits for them). On SIGTERM/SIGINT JupyterLab is
    stopped and every pending change is saved before exit (a second signal skips that).

    \b
    Example:
        JUPYTERLAB_PW=secret AWS_S3_BUCKET_FOLDER=my-bucket/me AWS_ACCESS_KEY_ID=AKIA... \\
        AWS_SECRET_ACCESS_KEY=... rclone-jupyter start --data-dir ~/work --port 8888
    """
    from rclone_jupyter.daemon.supervisor import Supervisor

    settings = _load(data_dir=data_dir, port=port)
    logs.configure(settings.log_level)
    # A stop that hangs can be looked at: SIGQUIT prints every thread's stack to stderr (the log) and exits.
    faulthandler.register(signal.SIGQUIT, all_threads=True)
    try:
        code = Supervisor(settings, launch_jupyter=not no_jupyter).run()
    except RcloneJupyterError as exc:
        log.error("ERROR: %s", exc)
        _fail(exc)
    sys.exit(code)


@cli.command(context_settings=CONTEXT)
def check() -> None:
    """Test the variables before a start: one line per check; exit 0 only when all pass.

    \b
    For every configured bucket: the credentials work, the bucket exists, a small probe object can be
    written, read back and deleted in the bucket folder; the bucket folder fits on the data folder's disk;
    credentials that expire soon and other containers on the same folder are warned about. Changes nothing
    (the probe object is deleted again); needs no JupyterLab and no state directory.

    \b
    Example:
        docker run --rm --env-file my.env IMAGE rclone-jupyter check
    """
    import tempfile

    from rclone_jupyter.daemon import preflight
    from rclone_jupyter.logs import secret_mask
    from rclone_jupyter.rclone.runner import rclone_for
    from rclone_jupyter.rclone.runner import check_bwlimit, find_binary
    from rclone_jupyter.config.remotes import render_config
    from rclone_jupyter.state import write_private

    settings = _load()
    # rclone's own complaints are summarised in the check lines; DEBUG shows them in full.
    logs.configure("DEBUG" if settings.log_level == "DEBUG" else "CRITICAL")
    secret_mask.add(*settings.secrets())
    if not settings.persistent:
        click.echo("FAILED  persistence: no bucket is configured (AWS_S3_BUCKET_FOLDER, AZURE_CONTAINER_URL or "
                   "GOOGLE_BUCKET_FOLDER): nothing would be saved.")
    try:
        binary = find_binary()
        check_bwlimit(binary, settings.bwlimit)
        # A private temporary folder (0700) for the config: `check` leaves nothing behind.
        with tempfile.TemporaryDirectory(prefix="rj-check-") as scratch:
            config = Path(scratch) / "rclone.conf"
            write_private(config, render_config(settings.remotes))
            report = preflight.run(settings, rclone_for(settings, binary, config), Path(scratch),
                                   incomplete_uploads=True)
    except RcloneJupyterError as exc:
        _fail(exc)
    for line in report.checks:
        click.echo(line.line())
    sys.exit(0 if report.ok and settings.persistent else 1)


@cli.command(context_settings=CONTEXT)
@click.option("--once", is_flag=True, required=True, help="Save everything now, then exit (required).")
@click.option("--timeout", type=click.FloatRange(1, settings_mod.MAX_SECONDS), default=600.0, show_default=True,
              callback=lambda _ctx, _param, value: _finite(value, "--timeout"),
              help="Seconds to wait for a running 'start' to finish the sync.")
@click.option("--dry-run", is_flag=True, help="Print what the sync would do, and change nothing.")
def sync(once: bool, timeout: float, dry_run: bool) -> None:
    """Save everything in the data folder to the bucket now.

    Safe while 'start' runs: it asks the running one to sync (never two rclone runs on one bucket at once).
    Exits 0 when everything that was in the data folder when it started is in the bucket.

    \b
    Example (from a JupyterLab terminal):
        rclone-jupyter sync --once
    """
    settings = _load()
    logs.configure(settings.log_level)
    if not settings.persistent:
        _fail(ConfigError(["no bucket is configured: set AWS_S3_BUCKET_FOLDER and the AWS keys "
                           "(or the Azure or Google variables) to have something to sync to."]))
    state = StateDir(settings.state_dir)
    pid = holder_pid(state.lock_path("daemon")) if state.path.exists() else None
    if dry_run:
        _dry_run(settings, state, timeout)
    try:
        try:
            if pid:
                click.echo(f"Asked the running rclone-jupyter (pid {pid}) to sync; waiting...", err=True)
            ok, error = ControlClient(state.path).sync(timeout)
        except DaemonNotRunning:
            ok, error = _sync_in_process(settings)
    except RcloneJupyterError as exc:
        _fail(exc)
    if ok:
        click.echo("Everything is saved.")
        sys.exit(0)
    click.echo(f"ERROR: the sync failed: {error}", err=True)
    sys.exit(1)


def _dry_run(settings, state: StateDir, timeout: float) -> None:
    """Print each cloud's plan (the running `start`'s, or bisync's when none runs), then exit."""
    try:
        try:
            plan, error = ControlClient(state.path).plan(timeout)
        except DaemonNotRunning:
            plan, error = _plan_in_process(settings)
    except RcloneJupyterError as exc:
        _fail(exc)
    for display, lines in (plan or {}).items():
        click.echo(f"{display}: {'nothing to do' if not lines else f'{len(lines)} step(s)'}")
        for line in lines:
            click.echo(f"  {line}")
    if error:
        click.echo(f"ERROR: the dry run failed: {error}", err=True)
        sys.exit(1)
    click.echo("Nothing was changed (--dry-run).")
    sys.exit(0)


def _plan_in_process(settings) -> tuple[dict[str, list[str]], str | None]:
    from rclone_jupyter.daemon.supervisor import make_engines, prepare
    from rclone_jupyter.engine.core import BISYNC
    from rclone_jupyter.logs import secret_mask

    secret_mask.add(*settings.secrets())
    state, binary = prepare(settings)
    plan, errors = {}, []
    for engine in make_engines(settings, state, binary, mode=BISYNC):
        try:
            engine.check_bucket()
            plan[engine.remote.display] = engine.plan()
        except RcloneJupyterError as exc:
            errors.append(f"{engine.remote.display}: {exc}")
    return plan, "; ".join(errors) or None


def _sync_in_process(settings) -> tuple[bool, str | None]:
    from rclone_jupyter.daemon.supervisor import make_engines, prepare
    from rclone_jupyter.engine.core import BISYNC
    from rclone_jupyter.logs import secret_mask

    secret_mask.add(*settings.secrets())
    state, binary = prepare(settings)
    errors = []
    # No daemon holds a baseline: rclone bisync keeps its own between runs (engine/bisync.py).
    for engine in make_engines(settings, state, binary, mode=BISYNC):
        try:
            engine.check_bucket()
            engine.mode.sync_alone()
        except RcloneJupyterError as exc:
            errors.append(f"{engine.remote.display}: {exc}")
    return not errors, "; ".join(errors) or None


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON (keys: last_sync, pending, "
                                                     "last_error, phase, running, remotes, ...).")
def status(as_json: bool) -> None:
    """Show the sync state of the running 'start': last durable sync, pending changes, last error.

    \b
    Example:
        rclone-jupyter status --json
    """
    state = _state_dir()
    try:
        data = ControlClient(state.path).status()
    except DaemonNotRunning:
        data = current_status(state)  # what a stopped one left, marked not running
    running = data["running"]
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        _print_status(data)
    sys.exit(0 if running else 1)


def _print_status(data: dict) -> None:
    click.echo(f"rclone-jupyter: {data.get('phase')}{'' if data.get('running') else ' (not running)'}")
    if data.get("phase") != "not started" and not data.get("persistent", True):
        click.echo("Persistence: OFF (no bucket configured): nothing is saved.")
    if (data.get("disk") or {}).get("full"):
        click.echo(f"Disk FULL: {data['disk']['message']}")
    click.echo(f"Last complete sync: {data.get('last_sync') or 'never'}")
    click.echo(f"Pending changes: {data.get('pending', 0)}")
    for path in data.get("pending_paths", [])[:20]:
        click.echo(f"  {path}")
    restore = data.get("restore") or {}
    if restore.get("state") == "running":
        click.echo(f"{_restoring_line(restore).capitalize()} ({restore.get('files_done', 0)} of "
                   f"{restore.get('files_total', '?')} files here)")
        for path in restore.get("to_come") or []:
            click.echo(f"  to come: {path}")
    for name, remote in (data.get("remotes") or {}).items():
        click.echo(f"[{name}] {remote.get('display')}: {remote.get('state')}, last sync {remote.get('last_sync') or 'never'}, "
                   f"{remote.get('pending', 0)} pending")
        if remote.get("oldest_pending"):
            click.echo(f"  oldest unsaved change: {remote['oldest_pending']}")
        if remote.get("last_error"):
            click.echo(f"  last error: {remote['last_error']} ({remote.get('last_error_at') or 'time unknown'})")
        skipped = remote.get("skipped") or {}
        if len(skipped) < (remote.get("skipped_count") or 0):
            click.echo(f"  {remote['skipped_count']} objects skipped (not restored); the first {len(skipped)} below, "
                       f"all of them in {remote.get('skipped_file')}")
        for object_name, why in skipped.items():
            click.echo(f"  skipped (not restored): {object_name!r}: {why}")
        for path, why in (remote.get("not_saved") or {}).items():
            click.echo(f"  NOT saved: {path}: {why}")


def _undo_settings(path: str):
    from rclone_jupyter import undo

    settings = _load()
    logs.configure("DEBUG" if settings.log_level == "DEBUG" else "WARNING")
    try:
        return settings, undo.data_path(settings.data_dir, path)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="PATH") from None


@cli.command(context_settings=CONTEXT)
@click.argument("path", required=False, default="")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON (a list of {path, time, kind, "
                                                     "size, mode, expires, object, clouds}).")
def history(path: str, as_json: bool) -> None:
    """List the versions the sync kept of files deleted or replaced, newest first.

    PATH is a file or a folder in the data folder (default: the current folder inside it, else all of it).
    Works with or without a running 'start' (one listing of the bucket folder's trash).

    \b
    Example:
        rclone-jupyter history project/
    """
    from rclone_jupyter import undo

    settings, rel = _undo_settings(path)
    try:
        records = undo.history(settings, rel)
    except RcloneJupyterError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo(f"Nothing is kept of {rel or 'the data folder'}." + ("" if settings.keep.on else
                   " Keeping is off (RCLONE_JUPYTER_KEEP_DAYS=0)."))
        return
    several = len(settings.remotes) > 1
    for record in records:
        where = f"  [{', '.join(record['clouds'])}]" if several else ""
        click.echo(f"{record['time']}  {record['kind']:8}  {logs.human_size(record['size']):>10}  {record['path']}"
                   f"{where}")
    click.echo(f"{len(records)} version(s), each kept {settings.keep.days:g} days. Bring one back with: "
               "rclone-jupyter recover PATH [--at TIME]")


@cli.command(context_settings=CONTEXT)
@click.argument("path")
@click.option("--at", "at", default=None, metavar="TIME",
              help="The version kept at this time, as 'history' shows it (e.g. 2026-12-01T20:42:05Z; UTC unless "
                   "a zone is given). Default: the newest.")
def recover(path: str, at: str | None) -> None:
    """Bring back a file deleted or replaced by the sync, or a folder: every file deleted under it at once.

    A file that is there now is kept as a conflict copy (name.conflictN.ext) first, never overwritten. With a
    running 'start' the file is written into the data folder and saved as any change; without one it is copied
    back in the bucket folder, and the next 'start' restores it.

    \b
    Examples:
        rclone-jupyter recover results.csv
        rclone-jupyter recover project/ --at 2026-12-01T20:42:05Z
    """
    from rclone_jupyter import undo
    from rclone_jupyter.model import trash

    settings, rel = _undo_settings(path)
    try:
        at_ns = trash.parse_time(at) if at else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    try:
        done, asides, where = undo.recover(settings, rel, at_ns)
    except RcloneJupyterError as exc:
        _fail(exc)
    if not done:
        click.echo(f"ERROR: nothing kept of {rel or 'the data folder'}{' at ' + at if at else ''}; see "
                   f"'rclone-jupyter history {rel}'.", err=True)
        sys.exit(1)
    for target in asides:
        click.echo(f"kept the current {target} as a conflict copy beside it")
    click.echo(f"Recovered {len(done)} file(s) into the {where}" + (
        "; the running rclone-jupyter saves them to the bucket." if where == "data folder"
        else "; the next 'rclone-jupyter start' restores them."))
    for target in done[:20]:
        click.echo(f"  {target}")
    if len(done) > 20:
        click.echo(f"  ... and {len(done) - 20} more")


@cli.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--timeout", type=click.FloatRange(0, settings_mod.MAX_SECONDS), default=None,
              callback=lambda _ctx, _param, value: None if value is None else _finite(value, "--timeout"),
              help="Give up after this many seconds (exit 1) [default: wait as long as it takes].")
def wait(paths: tuple[str, ...], timeout: float | None) -> None:
    """Wait until the restore has brought PATHs (files or folders), or everything if none is given.

    \b
    JupyterLab starts once the small files are restored; files over RCLONE_JUPYTER_LARGE_FILE (8 MiB: models,
    checkpoints, data sets) arrive after, smallest first, each under its name only once it is whole. Exit 0
    when they are here, 1 if the restore stopped or failed first, or on --timeout.

    \b
    Examples (a terminal, a script, a notebook cell):
        rclone-jupyter wait models/llama.safetensors
        !rclone-jupyter wait --timeout 600 checkpoints/
    """
    from rclone_jupyter.daemon import wait as waiting

    state = _state_dir()
    data = current_status(state)
    data_dir = data.get("data_dir") or os.environ.get("RCLONE_JUPYTER_DATA_DIR") or "/root/data"
    try:
        wanted = waiting.relative_paths(Path(data_dir), paths, Path.cwd())
    except ValueError as exc:
        click.echo(f"ERROR: {exc}. Give paths inside the data folder (relative to it, or absolute).", err=True)
        sys.exit(2)
    answer = waiting.wait(state, wanted, timeout)
    if answer.ok:
        click.echo("Everything is restored." if not paths else f"Restored: {', '.join(paths)}")
        sys.exit(0)
    click.echo(f"ERROR: {answer.message}", err=True)
    sys.exit(1)


@cli.command(context_settings=CONTEXT)
@click.option("--startup", is_flag=True,
              help="For a startup probe: exit 0 as soon as the start is under way (restoring), not only when ready.")
def health(startup: bool) -> None:
    """Exit 0 when the small files are restored and JupyterLab answers (a readiness probe, HEALTHCHECK).

    \b
    Large files (over RCLONE_JUPYTER_LARGE_FILE, 8 MiB) may still be arriving then: JupyterLab is usable, a
    script that needs them runs `rclone-jupyter wait PATH` first, and `health` says how far they are. With --startup it also exits 0
    while the restore runs, so a large bucket folder never outlasts a startup probe (a failed start stops
    the container by itself).

    \b
    Examples:
        HEALTHCHECK CMD rclone-jupyter health                   (Dockerfile)
        rclone-jupyter health --startup                         (SaladCloud startup probe)
    """
    state = _state_dir()
    data = read_status(state.status_path) or {}
    phase = data.get("phase", "not started")
    alive = bool(holder_pid(state.lock_path("daemon"))) if state.path.exists() else False
    if startup and alive and phase in (Phase.STARTING.value, Phase.CHECKING.value, Phase.RESTORING.value):
        click.echo(f"starting: {phase}")
        sys.exit(0)
    if phase != Phase.RUNNING.value or not alive:
        click.echo(f"not ready: {phase}{'' if alive else ' (not running)'}", err=True)
        sys.exit(1)
    port = (data.get("jupyter") or {}).get("port", 8000)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=5) as response:
            ok = response.status == 200
    except OSError as exc:
        click.echo(f"not ready: JupyterLab does not answer on port {port} ({exc})", err=True)
        sys.exit(1)
    if not ok:
        click.echo("not ready", err=True)
        sys.exit(1)
    restore = data.get("restore") or {}
    if restore.get("state") == "running":
        click.echo(f"ok; {_restoring_line(restore)}")
    else:
        click.echo("ok")
    sys.exit(0)


def _restoring_line(restore: dict) -> str:
    """'restoring 1.2 / 4.0 GiB, 3 large files to come' (the status item's words)."""
    gib = 1024 ** 3
    done, total = restore.get("bytes_done") or 0, restore.get("bytes_total") or 0
    line = f"restoring {done / gib:.1f} / {total / gib:.1f} GiB"
    if restore.get("to_come_count"):
        line += f", {restore['to_come_count']} large file(s) to come"
    return line


@cli.command(context_settings=CONTEXT)
@click.option("--dir", "base", type=click.Path(file_okay=False), default="demo", show_default=True,
              help="Where the demo keeps its bucket, data folder and state.")
@click.option("--port", type=int, default=8000, show_default=True, help="JupyterLab's port.")
def demo(base: str, port: int) -> None:
    """Run the whole loop locally: a built-in S3 server (rclone serve s3) stands in for the cloud.

    Open http://localhost:PORT (password 'data'), save a notebook, and watch it appear in DIR/bucket/.
    Stop with Ctrl-C: pending changes are saved first.

    \b
    Example:
        rclone-jupyter demo --dir /tmp/rj-demo --port 8888
    """
    from rclone_jupyter.demo import run_demo

    sys.exit(run_demo(Path(base), port))


def main() -> None:
    try:
        cli(prog_name="rclone-jupyter")
    except RcloneJupyterError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 - a bug: say what happened, keep the traceback for DEBUG
        log.debug("internal error", exc_info=True)
        click.echo(f"ERROR: internal error: {type(exc).__name__}: {exc}. Run with RCLONE_JUPYTER_LOG_LEVEL=DEBUG "
                   "for details, and please report it.", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
