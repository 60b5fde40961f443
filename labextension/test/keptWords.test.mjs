// The words of "Recently deleted or replaced" (src/keptWords.ts), on the compiled lib/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keptLine, keptNote, listedNote, recoveredText, size } from '../lib/keptWords.js';

const version = fields => ({ path: 'results.csv', time: '2026-12-01T20:42:05Z', kind: 'deleted', size: 1536,
  expires: '2026-12-08T20:42:05Z', ...fields });
const history = fields => ({ ok: true, error: null, versions: [version({})], count: 1, keep_days: 7,
  keep_every_minutes: 10, ...fields });

test('size: bytes, then one decimal in binary units', () => {
  assert.equal(size(12), '12 B');
  assert.equal(size(1536), '1.5 KiB');
  assert.equal(size(3 * 1024 ** 2 + 200 * 1024), '3.2 MiB');
});

test('keptLine: what happened, when (UTC) and how big', () => {
  assert.equal(keptLine(version({})), 'deleted 2026-12-01 20:42:05 UTC, 1.5 KiB');
  assert.equal(keptLine(version({ kind: 'replaced', size: 0 })), 'replaced 2026-12-01 20:42:05 UTC, 0 B');
});

test('keptNote: for how long, and that keeping can be off', () => {
  assert.equal(keptNote(history({})),
    'Every delete and at most one overwritten version per file every 10 min is kept in the bucket for 7 days.');
  assert.equal(keptNote(history({ keep_days: 0 })), 'Nothing is kept: RCLONE_JUPYTER_KEEP_DAYS is 0.');
});

test('listedNote: how many of how many, with the search', () => {
  assert.equal(listedNote(history({}), ''), '1 kept version.');
  assert.equal(listedNote(history({ versions: new Array(50).fill(version({})), count: 120 }), 'csv'),
    'The newest 50 of 120 kept versions matching "csv".');
  assert.equal(listedNote(history({ versions: [], count: 0 }), 'nope'), 'No kept version matching "nope".');
});

test('recoveredText: done, done with a conflict copy, refused', () => {
  assert.match(recoveredText({ ok: true, error: null, recovered: ['a.txt'], kept_aside: [] }, 'a.txt'),
    /^Recovered a.txt: it is in the data folder again/);
  assert.match(recoveredText({ ok: true, error: null, recovered: ['a.txt'], kept_aside: ['a.txt'] }, 'a.txt'),
    /kept beside it as a conflict copy/);
  assert.equal(recoveredText({ ok: false, error: 'nothing is kept of a.txt' }, 'a.txt'),
    'a.txt was not recovered: nothing is kept of a.txt');
});
