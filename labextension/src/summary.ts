// What the status bar says about a status: pure functions of the status and the time, no DOM.
import { IRemoteStatus, IRestoreStatus, IStatus } from './api';

export interface ISummary {
  text: string;
  error: boolean; // shown in the theme's error colour
}

const FAILING = new Set(['retrying', 'error']);
const REASON_LENGTH = 48;

/** "4 s ago", "3 min ago", "2 h ago". */
export function age(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) {
    return `${seconds} s ago`;
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)} min ago`;
  }
  if (seconds < 86400) {
    return `${Math.floor(seconds / 3600)} h ago`;
  }
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A local clock time for a moment today ("14:02:11"), with the date for older ones. */
export function clock(iso: string, now: number): string {
  const when = new Date(iso);
  const sameDay = new Date(now).toDateString() === when.toDateString();
  return sameDay ? when.toLocaleTimeString() : when.toLocaleString();
}

export function gib(bytes: number): string {
  return (bytes / 1024 ** 3).toFixed(1);
}

/** "1.2 / 4.0 GiB" (or "1.2 GiB" while the total is not known yet). */
export function restoreProgress(restore: IRestoreStatus): string {
  const done = gib(restore.bytes_done ?? 0);
  return typeof restore.bytes_total === 'number' ? `${done} / ${gib(restore.bytes_total)} GiB` : `${done} GiB`;
}

/**
 * The reason of an error, short enough for the status bar; the panel shows it whole. The daemon's errors read
 * "push failed: bucket unreachable (rclone exit 5): dial tcp ...": the reason is the part after "failed: ".
 */
export function shortReason(error: string | null): string {
  let text = (error ?? 'unknown error').split('\n')[0].trim();
  const failed = text.indexOf(' failed: ');
  if (failed >= 0) {
    text = text.slice(failed + ' failed: '.length);
  }
  text = text.split(/ \(rclone exit \d+\)|: /)[0].trim() || text;
  return text.length > REASON_LENGTH ? `${text.slice(0, REASON_LENGTH - 1)}…` : text;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function failing(status: IStatus): IRemoteStatus[] {
  return Object.values(status.remotes ?? {}).filter(r => FAILING.has(r.state));
}

/** The oldest unsaved change over the failing clouds, if the daemon says. */
function oldestPending(remotes: IRemoteStatus[]): string | null {
  const times = remotes.map(r => r.oldest_pending).filter((t): t is string => !!t);
  return times.length ? times.sort()[0] : null;
}

export function summarise(status: IStatus | null, fetchError: string | null, now: number): ISummary {
  if (status === null) {
    return { text: 'Sync status unavailable', error: true };
  }
  if (status.persistent === false) {
    return { text: 'Not persisted', error: true };
  }
  if (!status.running) {
    return { text: 'Not saved: rclone-jupyter is not running', error: true };
  }
  if (status.phase === 'restoring') {
    const restore = status.restore;
    return { text: restore ? `Restoring ${restoreProgress(restore)}` : 'Restoring', error: false };
  }
  const broken = failing(status);
  if (broken.length) {
    const since = oldestPending(broken);
    const reason = shortReason(broken[0].last_error);
    return { text: `Not saved: ${reason}${since ? ` (since ${clock(since, now)})` : ''}`, error: true };
  }
  if (status.pending > 0) {
    return { text: `Saving ${plural(status.pending, 'file')}`, error: false };
  }
  if (status.restore?.state === 'running') {
    // JupyterLab runs while the large files still arrive: say so until the last one is here.
    return { text: `Restoring ${restoreProgress(status.restore)}`, error: false };
  }
  if (status.last_sync) {
    return { text: `Saved ${age(status.last_sync, now)}`, error: false };
  }
  return { text: 'Not saved yet', error: false };
}

/** One line per cloud: its bucket folder, state and pending count (never a secret: the display has none). */
export function tooltip(status: IStatus | null, fetchError: string | null): string {
  if (status === null) {
    return `The sync status cannot be read: ${fetchError ?? 'no answer yet'}`;
  }
  if (status.persistent === false) {
    return 'No bucket is configured: the data folder is lost when this container stops. Click for details.';
  }
  const lines = Object.values(status.remotes ?? {}).map(
    r => `${r.display}: ${r.state}, ${plural(r.pending, 'file')} pending`
  );
  return [...lines, 'Click for details and Save now.'].join('\n');
}
