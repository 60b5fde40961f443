// The server extension's two routes (rclone_jupyter/jupyterlab/extension.py), through JupyterLab's own
// connection settings: base URL, login cookie and XSRF token come with every request.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** One cloud, as the daemon's status file describes it. Optional fields may be missing: hide that part. */
export interface IRemoteStatus {
  display: string;
  state: string; // starting | ok | retrying | error
  last_sync: string | null;
  pending: number;
  pending_paths?: string[];
  last_error: string | null;
  last_error_at?: string | null;
  oldest_pending?: string | null;
}

export interface IRestoreStatus {
  state: string; // running | done | failed
  bytes_done?: number | null;
  bytes_total?: number | null;
  files_done?: number | null;
  files_total?: number | null;
  // The large files still on their way once JupyterLab runs (the first 50), and how many there are.
  to_come?: string[];
  to_come_count?: number;
}

/** The JSON of `rclone-jupyter status --json`. */
export interface IStatus {
  phase: string;
  running: boolean;
  persistent?: boolean;
  last_sync: string | null;
  pending: number;
  pending_paths?: string[];
  last_error: string | null;
  remotes: { [name: string]: IRemoteStatus };
  restore?: IRestoreStatus | null;
  loss_window_seconds?: number | null;
}

export interface ISyncResult {
  ok: boolean;
  error: string | null;
}

const settings = ServerConnection.makeSettings();

function url(route: string): string {
  return URLExt.join(settings.baseUrl, 'rclone-jupyter', 'api', route);
}

export async function fetchStatus(): Promise<IStatus> {
  const response = await ServerConnection.makeRequest(url('status'), { cache: 'no-store' }, settings);
  if (!response.ok) {
    throw new Error(`the status answered HTTP ${response.status}`);
  }
  return (await response.json()) as IStatus;
}

/** Ask the daemon for a full sync (`rclone-jupyter sync --once`); resolves when it finished. */
export async function requestSync(): Promise<ISyncResult> {
  const response = await ServerConnection.makeRequest(url('sync'), { method: 'POST' }, settings);
  let body: Partial<ISyncResult> = {};
  try {
    body = (await response.json()) as Partial<ISyncResult>;
  } catch {
    // Not JSON (a proxy's error page): reported below by its status code.
  }
  if (typeof body.ok === 'boolean') {
    return { ok: body.ok, error: body.error ?? null };
  }
  return { ok: false, error: `the server answered HTTP ${response.status}` };
}

/** One version the sync kept in the bucket folder's trash (`rclone-jupyter history --json`). */
export interface IKeptVersion {
  path: string;
  time: string; // UTC, to the second: what `recover --at` reads back
  kind: string; // deleted | replaced
  size: number;
  expires: string | null;
}

export interface IHistory {
  ok: boolean;
  error: string | null;
  versions: IKeptVersion[]; // the newest first, at most 50
  count: number; // how many match in all
  keep_days?: number;
  keep_every_minutes?: number | null;
}

export interface IRecoverResult {
  ok: boolean;
  error: string | null;
  recovered?: string[];
  kept_aside?: string[];
}

async function answer<T extends { ok: boolean; error: string | null }>(response: Response): Promise<T> {
  try {
    const body = (await response.json()) as T;
    if (typeof body.ok === 'boolean') {
      return body;
    }
  } catch {
    // Not JSON (a proxy's error page): reported by its status code.
  }
  return { ok: false, error: `the server answered HTTP ${response.status}` } as T;
}

/** The newest kept versions whose path contains `search` (any case). */
export async function fetchHistory(search: string): Promise<IHistory> {
  const query = search ? `?${new URLSearchParams({ search }).toString()}` : '';
  const response = await ServerConnection.makeRequest(url('history') + query, { cache: 'no-store' }, settings);
  const body = await answer<IHistory>(response);
  return { ...body, versions: body.versions ?? [], count: body.count ?? 0 };
}

/** Bring one kept version back into the data folder (a file there now is kept as a conflict copy first). */
export async function requestRecover(path: string, at: string): Promise<IRecoverResult> {
  const response = await ServerConnection.makeRequest(
    url('recover'),
    { method: 'POST', body: JSON.stringify({ path, at }) },
    settings
  );
  return answer<IRecoverResult>(response);
}
