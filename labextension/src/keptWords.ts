// The words of "Recently deleted or replaced" (src/history.ts): pure functions, no DOM.
import { IHistory, IKeptVersion, IRecoverResult } from './api';

/** "1.5 KiB", "3.2 MiB", "12 B". */
export function size(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** "deleted 2026-12-01 20:42:05 UTC, 1.5 KiB". */
export function keptLine(version: IKeptVersion): string {
  const when = version.time.replace('T', ' ').replace(/Z$/, ' UTC');
  return `${version.kind} ${when}, ${size(version.size)}`;
}

/** What is kept, and for how long. */
export function keptNote(history: IHistory): string {
  if (!history.keep_days) {
    return 'Nothing is kept: RCLONE_JUPYTER_KEEP_DAYS is 0.';
  }
  const every = history.keep_every_minutes ? ` and at most one overwritten version per file every ` +
    `${history.keep_every_minutes} min` : '';
  return `Every delete${every} is kept in the bucket for ${history.keep_days} days.`;
}

/** How many are listed, of how many. */
export function listedNote(history: IHistory, search: string): string {
  const matching = search ? ` matching "${search}"` : '';
  if (!history.count) {
    return `No kept version${matching}.`;
  }
  const shown = history.versions.length;
  return shown < history.count
    ? `The newest ${shown} of ${history.count} kept versions${matching}.`
    : `${history.count} kept version${history.count === 1 ? '' : 's'}${matching}.`;
}

/** What a Recover did. */
export function recoveredText(result: IRecoverResult, path: string): string {
  if (!result.ok) {
    return `${path} was not recovered: ${result.error ?? 'unknown error'}`;
  }
  const aside = (result.kept_aside ?? []).length
    ? ' The file that was there is kept beside it as a conflict copy.'
    : '';
  return `Recovered ${path}: it is in the data folder again and is being saved.${aside}`;
}
