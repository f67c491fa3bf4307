// What the asset panel does to the asset shown: its cache override, copying its link and
// message JSON, and getting or refreshing its WhatsApp media ID.

import { $ } from './dom.js';
import { encodePath } from './format.js';
import { state } from './state.js';
import { CHOOSE_A_POLICY, setPicker } from './policy.js';
import { api, showError } from './api.js';
import { copyText } from './copy.js';
import { detailReady, renderMediaId, showsAsset, updateDetailActions } from './detail.js';
import { afterChange } from './refresh.js';

export async function setOverride(value) {
  if (!detailReady()) return;
  const path = state.record.path;
  const session = state.session;
  const errorTarget = $('override-error');
  errorTarget.textContent = '';
  if (value === '') {
    errorTarget.textContent = CHOOSE_A_POLICY;
    return;
  }
  try {
    await api('PATCH', `/assets/${encodePath(path)}`, { cache_control: value });
  } catch (e) {
    if (showsAsset(path, session)) showError(errorTarget, e);
    return;
  }
  if (showsAsset(path, session)) setPicker('override-policy', value ?? '');
  await afterChange();
}

export function copyField(pick) {
  if (!detailReady()) return;
  const r = state.record;
  const value = pick(r);
  if (value === undefined || value === null) return;
  copyText(typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

// "Get" reuses a valid ID (uploading only when there is none); "Refresh" uploads the current
// bytes again for a new ID with a full 30 days, e.g. before a campaign outlives the old one.
export async function requestMediaId(force) {
  if (!detailReady()) return;
  const path = state.record.path;
  const session = state.session;
  if (state.mediaBusy.has(path)) return;
  const errorTarget = $('media-id-error');
  errorTarget.textContent = '';
  state.mediaBusy.add(path);
  updateDetailActions();
  $('media-id-info').textContent = force
    ? 'uploading again for a new ID…'
    : 'asking the WhatsApp Media API…';
  let answer;
  try {
    answer = await api('POST', '/whatsapp/media', { path, force });
  } catch (e) {
    if (showsAsset(path, session)) {
      showError(errorTarget, e);
      renderMediaId(state.record);
    }
    return;
  } finally {
    if (session === state.session) state.mediaBusy.delete(path);
    updateDetailActions();
  }
  await afterChange();
  if (!showsAsset(path, session)) return;
  $('media-id').textContent = answer.media_id;
  $('media-id-info').textContent =
    `for phone number ${answer.phone_number_id}, valid until ${answer.expires_at}` +
    (answer.reused ? ' (reused: still valid)' : ' (newly uploaded)');
}
