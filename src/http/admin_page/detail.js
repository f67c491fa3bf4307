// The asset panel: choosing an asset, loading its record and fetch log, and showing them.
// Its actions (override, copy, media ID, delete) act on the record shown, never on the path
// chosen alone: until the chosen asset's record arrives they wait.

import { $, el } from './dom.js';
import { encodePath, humanSize, withLocalTime } from './format.js';
import { mediaIdsUnavailable, state, writeLocation } from './state.js';
import { explainSource, policyMeaning, policyWords, setPicker } from './policy.js';
import { api, ApiError, showError } from './api.js';
import { hideCopyFallback } from './copy.js';

export async function selectAsset(path) {
  if (path !== state.selected) {
    for (const id of ['override-error', 'media-id-error', 'delete-error', 'copy-status']) $(id).textContent = '';
    $('media-id-info').textContent = '';
    hideCopyFallback();
    // Until the new record is on screen the panel still shows the previous asset: it is
    // marked as loading and its actions wait (they act on the record shown, not this path).
    state.record = null;
    state.selected = path;
    state.fetchLogGeneration += 1;
    $('fetch-log').replaceChildren();
    updateDetailActions();
  }
  for (const row of $('asset-list').tBodies[0].rows) {
    row.classList.toggle('selected', row.dataset.path === path);
  }
  writeLocation();
  await loadDetail();
}

function hideDetail() {
  $('asset-detail').hidden = true;
  $('detail-empty').hidden = false;
  state.record = null;
  updateDetailActions();
}

/** Close the asset panel: nothing selected, and an answer on its way for it is dropped. */
export function closeDetail() {
  state.selected = null;
  state.detailGeneration += 1;
  state.fetchLogGeneration += 1;
  for (const id of ['override-error', 'media-id-error', 'delete-error', 'copy-status']) $(id).textContent = '';
  hideCopyFallback();
  hideDetail();
  for (const row of $('asset-list').tBodies[0].rows) row.classList.remove('selected');
  writeLocation();
}

/** Whether the panel shows the selected asset's record, so that its actions may run. */
export function detailReady() {
  return Boolean(state.record && state.record.path === state.selected && !$('asset-detail').hidden);
}

/**
 * Whether the panel still shows `path` in `session`: an action's answer (its error, or what it
 * renders) is for the asset it was asked for, and is dropped once another is shown.
 */
export function showsAsset(path, session) {
  return session === state.session && detailReady() && state.record.path === path;
}

/** The panel's buttons act on the record shown: they wait while another one is loading. */
const DETAIL_ACTIONS = [
  'copy-link',
  'copy-link-json',
  'copy-voice-json',
  'override-save',
  'override-remove',
  'fetch-log-reload',
  'delete-asset',
];

export function updateDetailActions() {
  const ready = detailReady();
  const loading = Boolean(state.selected) && !ready;
  const detail = $('asset-detail');
  detail.classList.toggle('loading', loading);
  if (loading) detail.setAttribute('aria-busy', 'true');
  else detail.removeAttribute('aria-busy');
  $('detail-loading').hidden = !loading;
  $('detail-loading').textContent = loading ? `Loading ${state.selected}…` : '';
  for (const id of DETAIL_ACTIONS) $(id).disabled = !ready;
  const busy = ready && state.mediaBusy.has(state.record.path);
  $('media-id-get').disabled = !ready || busy;
  $('media-id-refresh').disabled = !ready || busy;
  const byId = ready && state.record.message_by_id;
  $('copy-id-json').disabled = !byId;
  $('copy-id-json').title = !ready || byId ? '' : 'No valid media ID yet: use "Get media ID" first';
  // A template's media header is an image, a video or a document.
  const header = ready && state.record.template_header;
  $('copy-template-header').disabled = !header;
  $('copy-template-header').title = !ready || header
    ? 'The components entry of a template message that makes this the header'
    : `A template header is an image, a video or a document, not ${state.record.kind || 'this'}`;
  const headerById = ready && state.record.template_header_by_id;
  $('copy-template-header-id').disabled = !headerById;
  $('copy-template-header-id').title = !ready || headerById
    ? ''
    : header ? 'No valid media ID yet: use "Get media ID" first' : $('copy-template-header').title;
  // Without WhatsApp settings there is nothing to ask: say so before anyone clicks.
  const unavailable = mediaIdsUnavailable();
  if (unavailable) {
    $('media-id-get').disabled = true;
    $('media-id-refresh').disabled = true;
  }
  for (const id of ['media-id-get', 'media-id-refresh']) $(id).title = unavailable;
  $('media-id-unavailable').hidden = !unavailable;
  $('media-id-unavailable').textContent = unavailable;
}

/** Fetch the selected asset's record and its fetch log again and show them. */
export async function loadDetail() {
  const path = state.selected;
  if (!path) {
    hideDetail();
    return;
  }
  const generation = ++state.detailGeneration;
  let record;
  try {
    record = await api('GET', `/assets/${encodePath(path)}`);
  } catch (e) {
    if (generation !== state.detailGeneration) return;
    if (e instanceof ApiError && e.status === 404) {
      closeDetail();
      $('list-error').textContent = `${path} no longer exists.`;
    } else {
      // The panel must not go on showing another asset than the one selected.
      if (!detailReady()) hideDetail();
      showError($('list-error'), e);
    }
    return;
  }
  if (generation !== state.detailGeneration) return;
  const fresh = !state.record || state.record.path !== record.path;
  state.selected = record.path;
  state.record = record;
  renderDetail(record);
  // A new asset's override picker starts from its override; a refresh keeps what is chosen.
  if (fresh) setPicker('override-policy', record.cache_override ?? '');
  updateDetailActions();
  if (record.path !== path) writeLocation();
  await loadFetchLog(record.path);
}

function renderDetail(r) {
  $('asset-detail').hidden = false;
  $('detail-empty').hidden = true;
  const rules = state.policies && state.policies.folders;
  $('detail-path').textContent = r.path;
  $('detail-kind').textContent = r.kind || 'unknown';
  $('detail-size').textContent = `${humanSize(r.size)} (${r.size} bytes)`;
  $('detail-type').textContent = r.content_type;
  $('detail-policy').textContent = r.cache_control;
  $('detail-policy-words').textContent = policyWords(r.cache_control);
  $('detail-policy-source').textContent = r.policy_source;
  $('detail-policy-explain').textContent = `(${explainSource(r.policy_source, rules)})`;
  $('detail-policy-meaning').textContent = policyMeaning(r.cache_control);
  let signed = 'no';
  if (r.signed) {
    signed = `yes, from ${explainSource(r.signed_source, state.access && state.access.signed_folders)}`;
    if (r.link_expires_at) signed += `; the link below is valid until ${r.link_expires_at}`;
  }
  $('detail-signed').textContent = signed;
  $('detail-uploaded').textContent = withLocalTime(r.uploaded_at);
  $('detail-modified').textContent = withLocalTime(r.last_modified);
  $('detail-sha256').textContent = r.sha256;
  $('detail-link').textContent = r.link;
  $('detail-link').href = r.link;
  $('detail-message').textContent = JSON.stringify(r.message, null, 2);
  // Ogg Opus can go as a voice note; the record says when WhatsApp would show it badly.
  $('copy-voice-json').hidden = !r.message_voice;
  const warnings = r.warnings || [];
  $('detail-warnings').replaceChildren(...warnings.map((w) => el('li', { textContent: w })));
  $('detail-warnings').hidden = warnings.length === 0;
  $('override-current').textContent = r.cache_override ?? 'none';
  $('override-words').textContent = r.cache_override ? policyWords(r.cache_override) : '';

  const headerRows = (r.headers || []).map((h) =>
    el(
      'tr',
      { dataset: { header: h.name.toLowerCase() } },
      el('th', { scope: 'row', textContent: h.name }),
      el('td', { className: 'value', textContent: h.value }),
    ),
  );
  $('served-headers').tBodies[0].replaceChildren(...headerRows);

  renderMediaId(r);
  renderPreview(r);
}

function renderPreview(r) {
  const box = $('preview-box');
  // Keep the preview (a playing video or audio too) while the same bytes are shown the same
  // way: a signed link's signature changes at every refresh, the bytes do not.
  const key = JSON.stringify([r.path, r.sha256, r.kind, Boolean(r.signed)]);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  let preview = null;
  if (r.kind === 'image' || r.kind === 'sticker') {
    preview = el('img', { id: 'preview', src: r.link, alt: `Preview of ${r.path}`, decoding: 'async' });
  } else if (r.kind === 'video') {
    preview = el('video', { id: 'preview', src: r.link, controls: true, preload: 'metadata' });
  } else if (r.kind === 'audio') {
    preview = el('audio', { id: 'preview', src: r.link, controls: true, preload: 'metadata' });
  }
  if (preview) box.replaceChildren(preview);
  else box.replaceChildren(el('p', { className: 'muted', textContent: 'No preview for documents.' }));
}

export function renderMediaId(r) {
  const byId = r.message_by_id;
  const kind = byId && byId.type;
  const id = byId && byId[kind] ? byId[kind].id : '';
  $('media-id').textContent = id || '';
  const pre = $('detail-message-by-id');
  pre.hidden = !byId;
  pre.textContent = byId ? JSON.stringify(byId, null, 2) : '';
  const entries = Object.entries(r.whatsapp || {});
  let info;
  if (id) {
    const [phone, media] = entries.find(([, m]) => m.media_id === id) || [];
    info = phone ? `for phone number ${phone}, valid until ${media.expires_at}` : '';
  } else if (entries.length) {
    info = entries
      .map(([phone, m]) => `${m.media_id} for ${phone} ${m.valid ? `valid until ${m.expires_at}` : '(no longer valid)'}`)
      .join('; ');
  } else {
    info = 'no media ID yet';
  }
  $('media-id-info').textContent = info;
}

export async function loadFetchLog(path) {
  const target = $('fetch-log');
  const generation = ++state.fetchLogGeneration;
  const current = () => generation === state.fetchLogGeneration && state.selected === path;
  let data;
  try {
    data = await api('GET', `/fetches/${encodePath(path)}`);
  } catch (e) {
    if (current()) {
      target.replaceChildren(el('p', { className: 'error' }));
      showError(target.firstChild, e);
    }
    return;
  }
  if (!current()) return;
  const fetches = data.fetches || [];
  if (fetches.length === 0) {
    target.replaceChildren(
      el('p', { className: 'muted', textContent: 'No public fetches of this asset since this server started.' }),
    );
    return;
  }
  const rows = fetches.map((f) =>
    el(
      'tr',
      { dataset: { testid: 'fetch', status: String(f.status) } },
      el('td', { textContent: f.at, title: new Date(f.at_unix_ms).toLocaleString() }),
      el('td', { textContent: f.method }),
      el('td', { className: 'num', textContent: String(f.status) }),
      el('td', { className: 'num', textContent: String(f.bytes), title: humanSize(f.bytes) }),
      el(
        'td',
        { className: 'ua' },
        f.user_agent || '(none)',
        f.meta ? el('span', { className: 'badge', textContent: 'Meta' }) : null,
      ),
      el('td', { textContent: f.conditional ? 'yes' : 'no' }),
    ),
  );
  const head = el(
    'tr',
    {},
    ...['Time', 'Method', 'Status', 'Bytes', 'User agent', 'Conditional'].map((t) =>
      el('th', { scope: 'col', textContent: t, className: t === 'Status' || t === 'Bytes' ? 'num' : '' }),
    ),
  );
  target.replaceChildren(
    el('table', { className: 'compact fetches' }, el('thead', {}, head), el('tbody', {}, ...rows)),
    el('p', { className: 'muted', textContent: `Newest first; the last ${data.kept_per_asset} are kept.` }),
  );
}
