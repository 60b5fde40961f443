// "Recently deleted or replaced": the newest versions the sync kept in the bucket folder's trash, a search box,
// and a Recover button per version. Asked when the panel opens, on Refresh, on a search and after a Recover;
// not on every status poll (the list would jump under the pointer, and each look lists the trash).
import { IHistory, IKeptVersion, fetchHistory, requestRecover } from './api';
import { h } from './dom';
import { keptLine, keptNote, listedNote, recoveredText } from './keptWords';

const SEARCH_PAUSE = 300; // ms after the last key before the search is asked

export class HistoryView {
  readonly node: HTMLElement;

  constructor() {
    this.search = h('input', {
      type: 'search',
      class: 'jp-mod-styled rj-Search',
      placeholder: 'Search by path',
      'aria-label': 'Search the kept versions by path'
    }) as HTMLInputElement;
    this.search.addEventListener('input', () => {
      window.clearTimeout(this.pause);
      this.pause = window.setTimeout(() => void this.refresh(), SEARCH_PAUSE);
    });
    const refresh = h('button', { class: 'jp-mod-styled', type: 'button' }, 'Refresh');
    refresh.addEventListener('click', () => void this.refresh());
    this.node = h(
      'section',
      { class: 'rj-History', 'aria-label': 'Recently deleted or replaced' },
      h('h3', {}, 'Recently deleted or replaced'),
      this.note,
      h('div', { class: 'rj-Actions' }, this.search, refresh),
      this.result,
      this.listed,
      this.list
    );
  }

  /** Ask for the kept versions again (the current search). */
  async refresh(): Promise<void> {
    const search = this.search.value.trim();
    const asked = ++this.asked;
    let history: IHistory;
    try {
      history = await fetchHistory(search);
    } catch (reason) {
      history = { ok: false, error: String(reason), versions: [], count: 0 };
    }
    if (asked !== this.asked) {
      return; // a newer search answered first
    }
    this.note.textContent = history.ok ? keptNote(history) : `The kept versions cannot be listed: ${history.error}`;
    this.note.classList.toggle('rj-error', !history.ok);
    this.listed.textContent = history.ok ? listedNote(history, search) : '';
    this.list.replaceChildren(...history.versions.map(v => this.entry(v)));
  }

  private entry(version: IKeptVersion): HTMLElement {
    const button = h('button', { class: 'jp-mod-styled', type: 'button', 'aria-label': `Recover ${version.path}` },
      'Recover') as HTMLButtonElement;
    button.addEventListener('click', () => void this.recover(version, button));
    return h(
      'li',
      {},
      h('span', { class: 'rj-KeptPath' }, version.path),
      h('span', { class: 'rj-KeptWhen' }, keptLine(version)),
      button
    );
  }

  private async recover(version: IKeptVersion, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    this.result.classList.remove('rj-error');
    this.result.textContent = `Recovering ${version.path}…`;
    let text: string;
    let ok = false;
    try {
      const result = await requestRecover(version.path, version.time);
      ok = result.ok;
      text = recoveredText(result, version.path);
    } catch (reason) {
      text = `${version.path} was not recovered: ${String(reason)}`;
    }
    this.result.textContent = text;
    this.result.classList.toggle('rj-error', !ok);
    button.disabled = false;
    await this.refresh();
  }

  private search: HTMLInputElement;
  private pause = 0;
  private asked = 0;
  private note = h('p', {}, 'Looking at what is kept…');
  private result = h('p', { class: 'rj-RecoverResult', role: 'status', 'aria-live': 'polite' });
  private listed = h('p', {});
  private list = h('ul', { class: 'rj-Kept' });
}
