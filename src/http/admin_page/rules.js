// Changing the folder's rules: its cache policy and whether it serves signed links only.

import { $ } from './dom.js';
import { encodePath } from './format.js';
import { showsFolder, state } from './state.js';
import { CHOOSE_A_POLICY, pickerValue, setPicker } from './policy.js';
import { api, showError } from './api.js';
import { afterChange } from './refresh.js';

export async function saveFolderPolicy() {
  const folder = state.folder;
  const session = state.session;
  const errorTarget = $('folder-policy-error');
  errorTarget.textContent = '';
  const value = pickerValue('folder-policy');
  if (!value) {
    errorTarget.textContent = CHOOSE_A_POLICY;
    return;
  }
  try {
    await api('PUT', `/policies/${encodePath(folder)}`, { cache_control: value });
  } catch (e) {
    if (showsFolder(folder, session)) showError(errorTarget, e);
    return;
  }
  // The picker shows what was saved at once: after the reload it could undo a newer choice.
  if (showsFolder(folder, session)) setPicker('folder-policy', value);
  await afterChange();
}

export async function removeFolderPolicy() {
  const folder = state.folder;
  const session = state.session;
  const errorTarget = $('folder-policy-error');
  errorTarget.textContent = '';
  try {
    await api('DELETE', `/policies/${encodePath(folder)}`);
  } catch (e) {
    if (showsFolder(folder, session)) showError(errorTarget, e);
    return;
  }
  if (showsFolder(folder, session)) setPicker('folder-policy', '');
  await afterChange();
}

export async function setFolderSigned(signed) {
  const folder = state.folder;
  const session = state.session;
  const errorTarget = $('folder-signed-error');
  errorTarget.textContent = '';
  try {
    if (signed) await api('PUT', `/access/${encodePath(folder)}`, { signed: true });
    else await api('DELETE', `/access/${encodePath(folder)}`);
  } catch (e) {
    if (showsFolder(folder, session)) showError(errorTarget, e);
    return;
  }
  await afterChange();
}
