// The status bar item: "Saved 4 s ago", "Saving 3 files", "Not saved: ...", "Not persisted", "Restoring ...".
import { Widget } from '@lumino/widgets';
import { ISnapshot, StatusPoller } from './statusPoll';
import { summarise, tooltip } from './summary';

export class SyncStatusItem extends Widget {
  constructor(poller: StatusPoller, open: () => void) {
    super({ node: document.createElement('div') });
    this.addClass('rj-StatusItem');
    // A button for the keyboard and screen readers too: Tab reaches it, Enter or Space opens the panel.
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this.node.addEventListener('click', open);
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        open();
      }
    });
    this.node.textContent = 'Sync status…';
    poller.changed.connect((_, snapshot) => this.render(snapshot));
    if (poller.snapshot) {
      this.render(poller.snapshot);
    }
  }

  private render(snapshot: ISnapshot): void {
    const summary = summarise(snapshot.status, snapshot.error, Date.now());
    this.node.textContent = summary.text;
    this.node.classList.toggle('rj-error', summary.error);
    this.node.title = tooltip(snapshot.status, snapshot.error);
    this.node.setAttribute('aria-label', `${summary.text}. Open the sync status panel.`);
  }
}
