// The status bar's words for a status (src/summary.ts): pure functions, run with node's own test runner on
// the compiled lib/ (tests/integration/test_labextension_frontend.py runs this file from the pytest suite).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { age, restoreProgress, shortReason, summarise, tooltip } from '../lib/summary.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const ago = seconds => new Date(NOW - seconds * 1000).toISOString();
const remote = fields => ({
  display: 's3://bucket/team/alice',
  state: 'ok',
  last_sync: ago(4),
  pending: 0,
  last_error: null,
  ...fields
});
const status = fields => ({
  phase: 'running',
  running: true,
  persistent: true,
  last_sync: ago(4),
  pending: 0,
  last_error: null,
  remotes: { s3: remote({}) },
  ...fields
});

test('age: seconds, minutes, hours, days, never negative', () => {
  assert.equal(age(ago(4), NOW), '4 s ago');
  assert.equal(age(ago(59), NOW), '59 s ago');
  assert.equal(age(ago(60), NOW), '1 min ago');
  assert.equal(age(ago(3 * 3600 + 5), NOW), '3 h ago');
  assert.equal(age(ago(2 * 86400), NOW), '2 d ago');
  assert.equal(age(ago(-30), NOW), '0 s ago'); // a clock a little ahead of ours
});

test('restoreProgress: done of total in GiB, or done alone while the total is unknown', () => {
  const gib = 1024 ** 3;
  assert.equal(restoreProgress({ state: 'running', bytes_done: 1.2 * gib, bytes_total: 4 * gib }), '1.2 / 4.0 GiB');
  assert.equal(restoreProgress({ state: 'running', bytes_done: 0.5 * gib }), '0.5 GiB');
});

test('shortReason: the part after "failed: ", without rclone details, cut to fit', () => {
  assert.equal(
    shortReason('push failed: the bucket cannot be reached (rclone exit 5): dial tcp 127.0.0.1:9: refused'),
    'the bucket cannot be reached'
  );
  assert.equal(shortReason(null), 'unknown error');
  const long = shortReason('x'.repeat(100));
  assert.equal(long.length, 48);
  assert.ok(long.endsWith('…'));
});

test('summarise: each state of the daemon in a few words', () => {
  assert.deepEqual(summarise(null, 'HTTP 502', NOW), { text: 'Sync status unavailable', error: true });
  assert.deepEqual(summarise(status({ persistent: false }), null, NOW), { text: 'Not persisted', error: true });
  assert.deepEqual(summarise(status({ running: false }), null, NOW), {
    text: 'Not saved: rclone-jupyter is not running',
    error: true
  });
  assert.deepEqual(
    summarise(status({ phase: 'restoring', restore: { state: 'running', bytes_done: 0, bytes_total: 1024 ** 3 } }), null, NOW),
    { text: 'Restoring 0.0 / 1.0 GiB', error: false }
  );
  assert.deepEqual(summarise(status({ pending: 1 }), null, NOW), { text: 'Saving 1 file', error: false });
  assert.deepEqual(summarise(status({ pending: 3 }), null, NOW), { text: 'Saving 3 files', error: false });
  assert.deepEqual(summarise(status({}), null, NOW), { text: 'Saved 4 s ago', error: false });
  assert.deepEqual(summarise(status({ last_sync: null }), null, NOW), { text: 'Not saved yet', error: false });
});

test('summarise: a failing cloud wins over pending, with its reason and the oldest unsaved change', () => {
  const failing = status({
    pending: 2,
    remotes: {
      s3: remote({ state: 'retrying', last_error: 'push failed: the bucket cannot be reached', oldest_pending: ago(90) }),
      gcs: remote({})
    }
  });
  const summary = summarise(failing, null, NOW);
  assert.equal(summary.error, true);
  assert.match(summary.text, /^Not saved: the bucket cannot be reached \(since .+\)$/);
});

test('tooltip: one line per cloud, then what a click does', () => {
  assert.equal(
    tooltip(status({ remotes: { s3: remote({ pending: 1 }) } }), null),
    's3://bucket/team/alice: ok, 1 file pending\nClick for details and Save now.'
  );
  assert.match(tooltip(null, 'HTTP 502'), /cannot be read: HTTP 502/);
  assert.match(tooltip(status({ persistent: false }), null), /No bucket is configured/);
});
