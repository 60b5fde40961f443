// One status poll per tab: every 2 s while the tab is visible, none while it is hidden.
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
    document.addEventListener('visibilitychange', this.onVisibility);
    this.onVisibility();
  }

  get changed(): ISignal<this, ISnapshot> {
    return this._changed;
  }

  get snapshot(): ISnapshot | null {
    return this._snapshot;
  }

  /** Poll now (after "Save now"), then every interval from here. */
  refresh(): Promise<void> {
    this.cancel();
    return this.poll();
  }

  private onVisibility = (): void => {
    if (document.visibilityState === 'hidden') {
      this.cancel();
    } else if (this.timer === null && !this.busy) {
      void this.poll(); // back in view: show the present at once, not 2 s later
    }
  };

  private async poll(): Promise<void> {
    if (this.busy) {
      return;
    }
    this.busy = true;
    try {
      this._snapshot = { status: await fetchStatus(), error: null, fetchedAt: Date.now() };
    } catch (reason) {
      this._snapshot = { status: null, error: String(reason), fetchedAt: Date.now() };
    } finally {
      this.busy = false;
    }
    this._changed.emit(this._snapshot);
    // The next poll is planned only after this one answered: a slow server never gets requests piled up.
    if (document.visibilityState !== 'hidden') {
      this.timer = window.setTimeout(() => {
        this.timer = null;
        void this.poll();
      }, POLL_INTERVAL_MS);
    }
  }

  private cancel(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private timer: number | null = null;
  private busy = false;
  private _snapshot: ISnapshot | null = null;
  private _changed = new Signal<this, ISnapshot>(this);
}
