// Bulk actions on the ticked assets: each in turn, then how many went and what failed for each
// one that did not.

import { $, el } from './dom.js';
import { baseName, encodePath } from './format.js';
import { mediaIdsUnavailable, showsFolder, state } from './state.js';
import { pickerValue, policyWithRaw } from './policy.js';
import { api, ApiError } from './api.js';
import { updateBulkBar } from './selection.js';
import { afterChange } from './refresh.js';

/**
 * Run `action` on each ticked asset in turn, then say how many went and what failed for each
 * one that did not. The listing and the open asset are read again afterwards.
 */
export async function runBulk(label, action) {
  if (state.bulkBusy) return;
  const paths = [...state.checked].sort();
  if (paths.length === 0) return;
  const session = state.session;
  const folder = state.folder;
  state.bulkBusy = true;
  updateBulkBar();
  $('bulk-errors').replaceChildren();
  $('bulk-errors').hidden = true;
  const failures = [];
  let done = 0;
  for (const path of paths) {
    if (session !== state.session) return;
    $('bulk-status').textContent = `${label}: ${done + failures.length + 1} of ${paths.length}…`;
    try {
      await action(path);
      done += 1;
    } catch (e) {
      if (e instanceof ApiError && e.signedOut) return;
      failures.push(el('li', { textContent: `${baseName(path)}: ${e.message}`, dataset: { path } }));
    }
  }
  state.bulkBusy = false;
  updateBulkBar();
  if (!showsFolder(folder, session)) return;
  $('bulk-status').textContent = `${label}: ${done} of ${paths.length} done` +
    (failures.length ? `, ${failures.length} failed.` : '.');
  $('bulk-errors').replaceChildren(...failures);
  $('bulk-errors').hidden = failures.length === 0;
  await afterChange();
}

export async function bulkPolicy() {
  const value = pickerValue('bulk-policy');
  await runBulk(value ? `Cache policy ${policyWithRaw(value)}` : 'Override removed', (path) =>
    api('PATCH', `/assets/${encodePath(path)}`, { cache_control: value || null }));
}

export async function bulkMediaIds() {
  if (mediaIdsUnavailable()) return;
  await runBulk('Media IDs', (path) => api('POST', '/whatsapp/media', { path }));
}
