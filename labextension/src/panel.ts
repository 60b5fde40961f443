// The panel: per cloud its bucket folder, last complete sync, pending files, last error; the restore; the
// loss window; "Save now"; and what was recently deleted or replaced, with Recover (src/history.ts). Rebuilt on
// every poll, except the button and its result and the kept versions (focus stays put).
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import { IRemoteStatus, IRestoreStatus, IStatus, requestSync } from './api';
import { h } from './dom';
import { HistoryView } from './history';
import { ISnapshot, StatusPoller } from './statusPoll';
import { age, clock, restoreProgress, summarise } from './summary';

const LISTED = 50;

function when(iso: string | null | undefined, now: number): string {
  return iso ? `${clock(iso, now)} (${age(iso, now)})` : 'never';
}

function row(label: string, value: string | Node): HTMLElement[] {
  return [h('dt', {}, label), h('dd', {}, value)];
}

function remoteSection(name: string, remote: IRemoteStatus, now: number): HTMLElement {
  const rows = [
    ...row('State', remote.state),
    ...row('Last complete sync', when(remote.last_sync, now)),
    ...row('Pending files', String(remote.pending))
  ];
  if (remote.oldest_pending) {
    rows.push(...row('Oldest unsaved change', when(remote.oldest_pending, now)));
  }
  if (remote.last_error) {
    const at = remote.last_error_at ? ` (${when(remote.last_error_at, now)})` : '';
    rows.push(...row('Last error', h('span', { class: 'rj-error' }, remote.last_error + at)));
  }
  const section = h(
    'section',
    { class: 'rj-Remote', 'aria-label': `Cloud ${name}` },
    h('h3', {}, remote.display),
    h('dl', {}, ...rows)
  );
  const paths = remote.pending_paths ?? [];
  if (paths.length) {
    const more = remote.pending > paths.length ? ` (first ${paths.length} of ${remote.pending})` : '';
    section.append(
      h('h4', {}, `Pending files${more}`),
      h('ul', { class: 'rj-Paths' }, ...paths.slice(0, LISTED).map(p => h('li', {}, p)))
    );
  }
  return section;
}

function restoreLine(restore: IRestoreStatus): string {
  const files =
    typeof restore.files_done === 'number'
      ? `, ${restore.files_done}${typeof restore.files_total === 'number' ? ` / ${restore.files_total}` : ''} files`
      : '';
  const verb = { running: 'Restoring', done: 'Restored', failed: 'Restore failed after' }[restore.state] ?? restore.state;
  return `${verb} ${restoreProgress(restore)}${files}.`;
}

function lossWindow(seconds: number): string {
  const shown = seconds < 10 ? Math.max(1, Math.round(seconds)) : Math.round(seconds);
  return `A change is in the bucket about ${shown} s after you save.`;
}

function details(status: IStatus, now: number): HTMLElement {
  const parts: HTMLElement[] = [];
  if (status.persistent === false) {
    parts.push(
      h(
        'p',
        { class: 'rj-error' },
        'No bucket is configured: nothing in the data folder is persisted, and all of it is lost when this ' +
          'container stops. Set AWS_S3_BUCKET_FOLDER (or the Azure or Google variables) and restart.'
      )
    );
  }
  if (typeof status.loss_window_seconds === 'number' && status.persistent !== false) {
    parts.push(h('p', {}, lossWindow(status.loss_window_seconds)));
  }
  if (status.restore) {
    parts.push(h('p', {}, restoreLine(status.restore)));
    const toCome = status.restore.state === 'running' ? status.restore.to_come ?? [] : [];
    if (toCome.length) {
      const count = status.restore.to_come_count ?? toCome.length;
      const more = count > toCome.length ? ` (first ${toCome.length} of ${count})` : '';
      parts.push(
        h('h4', {}, `Still to come, smallest first${more}: each appears once whole`),
        h('ul', { class: 'rj-Paths' }, ...toCome.slice(0, LISTED).map(p => h('li', {}, p)))
      );
    }
  }
  for (const [name, remote] of Object.entries(status.remotes ?? {})) {
    parts.push(remoteSection(name, remote, now));
  }
  return h('div', {}, ...parts);
}

export class SyncPanel extends Widget {
  constructor(private poller: StatusPoller) {
    super();
    this.addClass('rj-Panel');
    this.id = 'rclone-jupyter-panel';
    this.title.label = 'Sync status';
    this.title.closable = true;
    this.button = h('button', { class: 'jp-mod-styled jp-mod-accept', type: 'button' }, 'Save now') as HTMLButtonElement;
    this.button.addEventListener('click', () => void this.saveNow());
    this.result = h('p', { class: 'rj-Result', role: 'status', 'aria-live': 'polite' });
    this.node.append(
      h('h2', {}, 'Is my work saved?'),
      this.summary,
      h('div', { class: 'rj-Actions' }, this.button, this.result),
      this.body,
      this.history.node
    );
    poller.changed.connect((_, snapshot) => this.render(snapshot));
    if (poller.snapshot) {
      this.render(poller.snapshot);
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.history.refresh();
  }

  private render(snapshot: ISnapshot): void {
    const now = Date.now();
    const summary = summarise(snapshot.status, snapshot.error, now);
    this.summary.textContent = summary.text;
    this.summary.classList.toggle('rj-error', summary.error);
    const status = snapshot.status;
    this.button.disabled = this.saving || !status || status.persistent === false || !status.running;
    this.body.replaceChildren(status ? details(status, now) : h('p', {}, snapshot.error ?? ''));
  }

  private async saveNow(): Promise<void> {
    this.saving = true;
    this.button.disabled = true;
    this.result.classList.remove('rj-error');
    this.result.textContent = 'Saving everything to the bucket…';
    let ok = false;
    let error: string | null = null;
    try {
      ({ ok, error } = await requestSync());
    } catch (reason) {
      error = String(reason);
    }
    this.saving = false;
    const at = new Date().toLocaleTimeString();
    this.result.textContent = ok ? `Everything is saved (${at}).` : `The sync failed (${at}): ${error}`;
    this.result.classList.toggle('rj-error', !ok);
    await this.poller.refresh();
  }

  private button: HTMLButtonElement;
  private result: HTMLElement;
  private history = new HistoryView();
  private summary = h('p', { class: 'rj-Summary' });
  private body = h('div', { class: 'rj-Details' });
  private saving = false;
}
