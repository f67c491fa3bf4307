// Deleting, one asset or the ticked ones, behind a confirmation that names what goes.

import { $, el } from './dom.js';
import { encodePath } from './format.js';
import { state } from './state.js';
import { api, parseJson, showError } from './api.js';
import { closeDetail, detailReady, showsAsset } from './detail.js';
import { reloadFolder } from './folder.js';
import { runBulk } from './bulk.js';

/** Ask before deleting `paths` (the ticked assets), or the asset shown when none are given. */
export function openDeleteDialog(paths) {
  const bulk = Array.isArray(paths);
  if (!bulk && !detailReady()) return;
  const targets = bulk ? paths : [state.record.path];
  const dialog = $('confirm-delete');
  dialog.dataset.paths = JSON.stringify(targets);
  dialog.dataset.bulk = String(bulk);
  dialog.dataset.session = String(state.session);
  $('confirm-delete-text').textContent = targets.length === 1
    ? `Delete ${targets[0]}?`
    : `Delete these ${targets.length} assets?`;
  $('confirm-delete-list').replaceChildren(...(targets.length > 1 ? targets : []).map((p) => el('li', { textContent: p })));
  $('confirm-delete-list').hidden = targets.length === 1;
  $('delete-error').textContent = '';
  if (!dialog.open) dialog.showModal();
  $('confirm-delete-no').focus();
}

export function closeDeleteDialog() {
  const dialog = $('confirm-delete');
  if (dialog.open) dialog.close();
}

export async function confirmDelete() {
  const dialog = $('confirm-delete');
  const paths = parseJson(dialog.dataset.paths || '') || [];
  const bulk = dialog.dataset.bulk === 'true';
  const session = Number(dialog.dataset.session);
  closeDeleteDialog();
  delete dialog.dataset.paths;
  if (paths.length === 0 || session !== state.session) return;
  if (bulk) {
    await runBulk('Deleted', async (path) => {
      await api('DELETE', `/assets/${encodePath(path)}`);
      state.checked.delete(path);
      if (state.selected === path) closeDetail();
    });
    return;
  }
  const path = paths[0];
  try {
    await api('DELETE', `/assets/${encodePath(path)}`);
  } catch (e) {
    if (showsAsset(path, session)) showError($('delete-error'), e);
    return;
  }
  if (session !== state.session) return;
  if (state.selected === path) closeDetail();
  await reloadFolder();
}

export function bulkDelete() {
  const paths = [...state.checked].sort();
  if (paths.length === 0 || state.bulkBusy) return;
  openDeleteDialog(paths);
}
