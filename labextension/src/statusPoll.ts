// One status poll per tab, by @lumino/polling's Poll: every 2 s while the tab is visible, none while it is
// hidden (standby 'when-hidden', no lingering), and one at once when it comes back in view.
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';
import { IStatus, fetchStatus } from './api';

export const POLL_INTERVAL_MS = 2000;

/** The last answer, or the reason there is none. */
export interface ISnapshot {
  status: IStatus | null;
  error: string | null;
  fetchedAt: number;
}

export class StatusPoller {
  constructor() {
    this.poll = new Poll({
      name: 'rclone-jupyter:status',
      factory: () => this.fetch(),
      // A failed fetch is shown, not retried faster or slower: the factory never rejects. The next poll is
      // planned only after this one answered, so a slow server never gets requests piled up.
      frequency: { interval: POLL_INTERVAL_MS, backoff: false },
      linger: 0,
      standby: 'when-hidden'
    });
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  get changed(): ISignal<this, ISnapshot> {
    return this._changed;
  }

  get snapshot(): ISnapshot | null {
    return this._snapshot;
  }

  /** Poll now (after "Save now"), then every interval from here. */
  async refresh(): Promise<void> {
    await this.poll.refresh();
    await this.poll.tick;
  }

  private onVisibility = (): void => {
    if (document.visibilityState !== 'hidden') {
      void this.poll.refresh(); // back in view: show the present at once, not 2 s later
    }
  };

  private async fetch(): Promise<void> {
    try {
      this._snapshot = { status: await fetchStatus(), error: null, fetchedAt: Date.now() };
    } catch (reason) {
      this._snapshot = { status: null, error: String(reason), fetchedAt: Date.now() };
    }
    this._changed.emit(this._snapshot);
  }

  private poll: Poll;
  private _snapshot: ISnapshot | null = null;
  private _changed = new Signal<this, ISnapshot>(this);
}
