// Reading the server's state again: the folder rules, signed folders and WhatsApp settings
// that several views show, and after any change, those, the listing and the asset shown.

import { $ } from './dom.js';
import { state } from './state.js';
import { api, showError } from './api.js';
import { updateBulkBar } from './selection.js';
import { loadDetail, updateDetailActions } from './detail.js';
import { reloadFolder } from './folder.js';

/**
 * The folder policies and signed-only folders, which several views show. An answer that
 * comes after a later call's was asked for is dropped: the later one is the truer.
 */
export async function loadSettings() {
  const generation = ++state.settingsGeneration;
  const [policies, access, whatsapp] = await Promise.all([
    api('GET', '/policies'),
    api('GET', '/access'),
    api('GET', '/whatsapp'),
  ]);
  if (generation !== state.settingsGeneration) return;
  state.policies = policies;
  state.access = access;
  state.whatsapp = whatsapp;
  updateDetailActions();
  updateBulkBar();
}

/** After any change: the rules, the listing and the selected asset as the server now has them. */
export async function afterChange() {
  try {
    await loadSettings();
  } catch (e) {
    showError($('list-error'), e);
  }
  await Promise.all([reloadFolder(), loadDetail()]);
}
