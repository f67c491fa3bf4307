// media-origin admin page: signs in with the admin token and drives the admin API (/api).
//
// No framework and no build step: the server compiles this file in and serves it under a
// strict Content-Security-Policy (no inline script or style, connections to this origin only).
// Every node is built with DOM calls and text is set with textContent, never parsed as markup:
// asset and folder names are chosen by whoever uploads them.

const TOKEN_KEY = 'media-origin.admin-token';
const API = '/api';
/** Records per listing request (the API's maximum) and how many pages one folder view reads. */
const PAGE_SIZE = 1000;
const MAX_PAGES = 20;

const state = {
  token: null,
  /**
   * Counts sign-outs: a request remembers the session (and token) it was sent in, so a late
   * answer from an earlier session neither ends the current one nor shows in its views.
   */
  session: 0,
  /** The current folder: "" for the root, else a path without leading or trailing slash. */
  folder: '',
  /** The selected asset's path, or null. */
  selected: null,
  /**
   * The record the asset panel shows, as the API last answered it. Right after a selection
   * changes it is null until the new asset's record arrives: actions act on this record's
   * path (what is on screen), never on `selected` alone.
   */
  record: null,
  /** Assets whose "Get media ID" or "Refresh" is on its way. */
  mediaBusy: new Set(),
  /** GET /api/policies, GET /api/access and GET /api/whatsapp, as last answered. */
  policies: null,
  access: null,
  whatsapp: null,
  /** The folder's listing as last answered ({folders, records, truncated}), for filter and sort. */
  listing: null,
  /** Paths ticked in the listing, for the bulk actions (only those of the folder shown). */
  checked: new Set(),
  /** A bulk action is under way: the bulk buttons wait. */
  bulkBusy: false,
  /** Counters that let a late answer for an earlier view be dropped. */
  listGeneration: 0,
  /** The folder the latest navigation asked for: a reload follows it, not the one it leaves. */
  wantedFolder: null,
  detailGeneration: 0,
  settingsGeneration: 0,
  fetchLogGeneration: 0,
};

// ---- small helpers ---------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

/** An element with properties (className, textContent, dataset, attrs, on...) and children. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'attrs') for (const [a, v] of Object.entries(value)) node.setAttribute(a, v);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A path or folder in an API URL: each segment percent-encoded, joined by "/". */
function encodePath(path) {
  return path.split('/').map(encodeURIComponent).join('/');
}

function folderLabel(folder) {
  return folder === '' ? '/' : folder;
}

function normalizeFolder(text) {
  return text.trim().replace(/^\/+|\/+$/g, '');
}

function parentFolder(path) {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

function baseName(path) {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Sizes in decimal units, as WhatsApp's limits are (1 MB = 1,000,000 bytes). */
function humanSize(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1000;
    unit += 1;
  } while (value >= 1000 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

function humanDuration(secs) {
  const parts = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, name] of parts) {
    if (secs >= size && secs % size === 0) {
      const n = secs / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${secs} second${secs === 1 ? '' : 's'}`;
}

/** An HTTP date with the same moment in the browser's time zone beside it. */
function withLocalTime(httpDate) {
  if (!httpDate) return '';
  const date = new Date(httpDate);
  return Number.isNaN(date.getTime()) ? httpDate : `${httpDate} (${date.toLocaleString()})`;
}

/**
 * The cache policies in plain words, as the pickers offer them. The API keeps its exact
 * `Cache-Control` syntax; the page translates, and shows the raw directive small beside.
 */
const POLICY_PRESETS = [
  ['max-age=3600', 're-use for 1 hour'],
  ['max-age=86400', 're-use for 1 day'],
  ['max-age=604800', 're-use for 7 days'],
  ['max-age=2592000', 're-use for 30 days'],
  ['no-cache', 'always re-check when changed'],
  ['no-store', 'never cache'],
  ['private', 'personalised'],
];

/** A policy in plain words: a preset's, "re-use for N <unit>" for other ages, else as is. */
function policyWords(policy) {
  const preset = POLICY_PRESETS.find(([value]) => value === policy);
  if (preset) return preset[1];
  const maxAge = /^max-age=(\d+)$/.exec(policy || '');
  if (maxAge) return `re-use for ${humanDuration(Number(maxAge[1]))}`;
  return policy || '';
}

/** A policy in words with its directive: "re-use for 1 day (max-age=86400)". */
function policyWithRaw(policy) {
  const words = policyWords(policy);
  return words === policy ? policy : `${words} (${policy})`;
}

/** What Meta's media fetcher does with each policy (WHATSAPP_MEDIA.md §2). */
function policyMeaning(policy) {
  const maxAge = /^max-age=(\d+)$/.exec(policy || '');
  if (maxAge) {
    const secs = Number(maxAge[1]);
    return `Meta caches it by URL and reuses it for ${humanDuration(secs)}, then fetches it again.`;
  }
  switch (policy) {
    case 'no-cache':
      return 'Meta may cache it, but refreshes its copy whenever Last-Modified differs.';
    case 'no-store':
      return 'Meta never caches it: every send fetches it from this server.';
    case 'private':
      return 'Meta treats it as per-recipient content and never caches it.';
    default:
      return '';
  }
}

function ruleOrigin(source) {
  return source === 'config' ? 'config file' : 'set through the API';
}

/** A person's reading of a `policy_source` / `signed_source` value. */
function explainSource(source, rules) {
  if (source === 'asset') return "this asset's own override";
  if (source === 'default') return 'the default (config file)';
  if (source && source.startsWith('folder:')) {
    const folder = source.slice('folder:'.length);
    const rule = (rules || []).find((r) => r.folder === folder);
    return `the folder rule for ${folder}${rule ? `, ${ruleOrigin(rule.source)}` : ''}`;
  }
  return '';
}

// ---- the policy pickers ------------------------------------------------------------------
// A picker is a <select id="NAME-choice" data-picker="NAME"> of the presets (and "custom…"),
// the text field NAME for a custom directive, shown only for "custom…", and NAME-raw showing
// the directive that will be sent.

function setUpPicker(select) {
  const name = select.dataset.picker;
  const custom = $(name);
  const options = [];
  if (select.dataset.empty !== undefined) {
    options.push(el('option', { value: '', textContent: select.dataset.empty }));
  }
  for (const [value, words] of POLICY_PRESETS) options.push(el('option', { value, textContent: words }));
  options.push(el('option', { value: 'custom', textContent: 'custom…' }));
  select.replaceChildren(...options);
  select.dataset.last = select.value;
  select.addEventListener('change', () => {
    const custom = select.value === 'custom';
    $(name).hidden = !custom;
    if (custom) {
      // Starts from the directive chosen before, all selected: typing replaces it, never
      // appends to it.
      if (!$(name).value) $(name).value = select.dataset.last || '';
      $(name).focus();
      $(name).select();
    } else {
      select.dataset.last = select.value;
    }
    showPickerRaw(name);
  });
  custom.addEventListener('input', () => showPickerRaw(name));
  showPickerRaw(name);
}

/** The directive a picker holds: a preset's, the custom field's (trimmed), or "" for none. */
function pickerValue(name) {
  const select = $(`${name}-choice`);
  return select.value === 'custom' ? $(name).value.trim() : select.value;
}

/** Show `value` in a picker: its preset when it is one, else "custom…" with exactly `value`. */
function setPicker(name, value) {
  const select = $(`${name}-choice`);
  const wanted = value ?? '';
  const known = wanted !== 'custom' && [...select.options].some((o) => o.value === wanted);
  select.value = known ? wanted : 'custom';
  select.dataset.last = wanted;
  $(name).hidden = known;
  $(name).value = known ? '' : wanted;
  showPickerRaw(name);
}

function showPickerRaw(name) {
  $(`${name}-raw`).textContent = pickerValue(name);
}

// ---- the API -----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** The message of an error answer (`{"error": {"code", "message"}}`), with Meta's own words. */
function errorFromBody(status, body) {
  const error = body && typeof body === 'object' ? body.error : null;
  if (error && typeof error.message === 'string') {
    let message = error.message;
    if (error.meta && typeof error.meta.message === 'string' && !message.includes(error.meta.message)) {
      message += ` (Meta: ${error.meta.message})`;
    }
    return new ApiError(status, error.code || 'error', message, body);
  }
  return new ApiError(status, 'http_error', `the server answered HTTP ${status}`, body);
}

function parseJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The rejection of a request whose session is over: the sign-in view says why, if anything. */
function signedOutError(message) {
  const error = new ApiError(401, 'signed_out', message);
  error.signedOut = true;
  return error;
}

/** A 401 for a request sent with an earlier token: only that request failed. */
function staleTokenError() {
  return new ApiError(
    401,
    'stale_token',
    'the server refused it: it was sent with an admin token this page no longer uses',
  );
}

/**
 * Call the admin API with the token. Resolves to the parsed JSON (null for 204); rejects with
 * an ApiError. A 401 ends the session (the page goes back to sign-in with the API's message)
 * only if the request carried the current session's token: a late 401 for a request sent
 * before the token changed fails that request alone.
 */
async function api(method, path, body) {
  const token = state.token;
  const session = state.session;
  if (token === null) throw signedOutError('signed out');
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (e) {
    throw new ApiError(0, 'network', `the server did not answer (${e.message})`);
  }
  const data = parseJson(await response.text());
  if (response.ok) return data;
  const error = errorFromBody(response.status, data);
  if (response.status === 401) {
    if (!sessionEnded(error.message, token, session)) throw staleTokenError();
    error.signedOut = true;
  }
  throw error;
}

/** Show an error's message in `target`; one that ended the session is on the sign-in view. */
function showError(target, error) {
  if (error instanceof ApiError && error.signedOut) return;
  target.textContent = error instanceof Error ? error.message : String(error);
}

// ---- signing in and out -----------------------------------------------------------------

function showSignIn(message) {
  $('app').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in-view').hidden = false;
  $('sign-in-error').textContent = message || '';
  $('token').focus();
}

/**
 * Forget the session: every answer still on its way is dropped. The upload rows stay (each
 * tells how its file went, and a running upload still reports its end there).
 */
function resetView() {
  state.token = null;
  state.session += 1;
  state.selected = null;
  state.record = null;
  state.policies = null;
  state.access = null;
  state.whatsapp = null;
  state.listing = null;
  state.checked.clear();
  state.bulkBusy = false;
  state.wantedFolder = null;
  state.mediaBusy.clear();
  state.listGeneration += 1;
  state.detailGeneration += 1;
  state.settingsGeneration += 1;
  state.fetchLogGeneration += 1;
  $('asset-detail').hidden = true;
  updateDetailActions();
  $('folder-list').replaceChildren();
  $('asset-list').tBodies[0].replaceChildren();
  $('list-filter').value = '';
  $('bulk-status').textContent = '';
  $('bulk-errors').replaceChildren();
  $('bulk-errors').hidden = true;
  updateBulkBar();
  for (const id of ERROR_IDS) $(id).textContent = '';
  closeDeleteDialog();
  answerReplace(false);
}

/** The error lines of the views, emptied when the session ends. */
const ERROR_IDS = [
  'list-error',
  'go-folder-error',
  'folder-policy-error',
  'folder-signed-error',
  'override-error',
  'media-id-error',
  'delete-error',
];

/**
 * A request sent with `token` in `session` got a 401. If that is still the session's token, the
 * server no longer takes it (changed, or the server restarted with a generated one): back to
 * sign-in, and true. A request from an earlier session or token says nothing about the
 * current one: false, and nothing changes.
 */
function sessionEnded(message, token, session) {
  if (token === null || token !== state.token || session !== state.session) return false;
  const wasSignedIn = !$('app').hidden;
  sessionStorage.removeItem(TOKEN_KEY);
  resetView();
  // The API's own words ("invalid bearer token") mean little to whoever runs a campaign:
  // say what happened and what to do, in a sentence.
  showSignIn(wasSignedIn ? TOKEN_NO_LONGER_ACCEPTED : WRONG_TOKEN);
  return true;
}

const WRONG_TOKEN =
  'That is not the admin token this server expects. Paste it again exactly as you were given ' +
  'it (nothing missing, no spaces around it), or ask whoever runs the server for the current one.';
const TOKEN_NO_LONGER_ACCEPTED =
  'You were signed out: the server no longer accepts the token this page was using (it was ' +
  'changed, or the server started again with a new one). Sign in with the current admin token.';

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  resetView();
  // Whoever signs out leaves: the list of their uploads goes too.
  $('uploads').replaceChildren();
  $('token').value = '';
  showSignIn('');
}

/**
 * An HTTP header carries printable ASCII only (the server reads nothing else), and fetch
 * refuses to send anything outside Latin-1: such a token can never be the admin token.
 */
function tokenProblem(token) {
  if (!token) return 'Enter the admin token.';
  if (!/^[\x20-\x7e\t]+$/.test(token)) {
    return 'This token contains characters an admin token never has (only printable ASCII ' +
      'letters, digits and symbols): check what was pasted.';
  }
  return '';
}

async function signIn(token) {
  $('sign-in-error').textContent = '';
  const problem = tokenProblem(token);
  if (problem) {
    if (token) sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(problem);
    return;
  }
  state.token = token;
  $('sign-in').disabled = true;
  try {
    await loadSettings();
  } catch (e) {
    // A 401 already went back to sign-in, with the API's reason.
    if (!e.signedOut) {
      state.token = null;
      showError($('sign-in-error'), e);
    }
    return;
  } finally {
    $('sign-in').disabled = false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token').value = '';
  $('sign-in-view').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = false;
  const start = readLocation();
  const opened = await openFolder(start.folder, $('list-error'));
  if (!opened && start.folder !== '') await openFolder('', $('list-error'));
  if (start.asset && parentFolder(start.asset) === state.folder) await selectAsset(start.asset);
}

/**
 * The folder policies and signed-only folders, which several views show. An answer that
 * comes after a later call's was asked for is dropped: the later one is the truer.
 */
async function loadSettings() {
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

/** Why media IDs cannot be had here, in a sentence; "" when they can. */
function mediaIdsUnavailable() {
  const wa = state.whatsapp;
  if (!wa || wa.configured) return '';
  return 'Media IDs are not available: this server is not connected to WhatsApp yet ' +
    `(${wa.missing}). Ask whoever runs it to set that up; the link works without a media ID.`;
}

// ---- where we are (kept in the URL's fragment, so a reload comes back) -------------------

function readLocation() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { folder: normalizeFolder(params.get('folder') || ''), asset: params.get('asset') };
}

function writeLocation() {
  const params = new URLSearchParams();
  if (state.folder) params.set('folder', state.folder);
  if (state.selected) params.set('asset', state.selected);
  const hash = params.toString();
  history.replaceState(null, '', hash ? `#${hash}` : location.pathname + location.search);
}

// ---- folders and the listing ------------------------------------------------------------

/** One level of `folder`: its subfolders, and its own assets up to MAX_PAGES pages. */
async function listFolder(folder) {
  const records = [];
  let folders = [];
  let cursor = null;
  let pages = 0;
  do {
    const query = new URLSearchParams({ folder, limit: String(PAGE_SIZE) });
    if (cursor) query.set('cursor', cursor);
    const page = await api('GET', `/assets?${query}`);
    records.push(...page.assets);
    folders = page.folders;
    cursor = page.next_cursor;
    pages += 1;
  } while (cursor && pages < MAX_PAGES);
  return { folders, records, truncated: Boolean(cursor) };
}

/**
 * Show `folder`: its subfolders and assets. Resolves to false (with the API's message in
 * `errorTarget`) when the folder cannot be listed, e.g. an invalid path.
 */
async function openFolder(folder, errorTarget) {
  const generation = ++state.listGeneration;
  // A reload that starts while this is on its way lists this folder, not the one it leaves.
  state.wantedFolder = folder;
  errorTarget.textContent = '';
  let listing;
  try {
    listing = await listFolder(folder);
  } catch (e) {
    if (generation === state.listGeneration) {
      state.wantedFolder = state.folder;
      showError(errorTarget, e);
    }
    return false;
  }
  if (generation !== state.listGeneration) return false;
  const changed = folder !== state.folder;
  state.folder = folder;
  // The open asset stays open only if it is in the folder now shown.
  if (changed && state.selected && parentFolder(state.selected) !== folder) closeDetail();
  $('list-error').textContent = '';
  $('go-folder-error').textContent = '';
  if (changed) {
    state.checked.clear();
    $('list-filter').value = '';
    $('bulk-status').textContent = '';
    $('bulk-errors').replaceChildren();
    $('bulk-errors').hidden = true;
  }
  renderFolder(listing);
  showUploadsOf(folder);
  if (changed) {
    setPicker('folder-policy', currentRule()?.cache_control ?? '');
    $('folder-policy-error').textContent = '';
    $('folder-signed-error').textContent = '';
  }
  renderFolderPolicy();
  renderFolderSigned();
  writeLocation();
  return true;
}

function reloadFolder() {
  return openFolder(state.wantedFolder ?? state.folder, $('list-error'));
}

let refreshTimer = null;
/** Reload the listing soon, once, however many uploads finish meanwhile. */
function scheduleFolderReload() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    if (state.token) reloadFolder();
  }, 150);
}

function renderFolder({ folders, records, truncated }) {
  const folder = state.folder;
  const prefix = folder === '' ? '' : `${folder}/`;
  $('current-folder').textContent = folderLabel(folder);
  $('upload-target').textContent = folderLabel(folder);
  renderBreadcrumb(folder);

  // Subfolder name → whether it holds assets (a folder with only a rule is a place too).
  const subfolders = new Map(folders.map((full) => [full.slice(prefix.length), true]));
  const assets = records;
  // Folders that only hold a rule (no assets yet) are places too.
  const ruleFolders = [
    ...((state.policies && state.policies.folders) || []).map((r) => r.folder),
    ...((state.access && state.access.signed_folders) || []).map((f) => f.folder),
  ];
  for (const ruled of ruleFolders) {
    if (!ruled.startsWith(prefix) || ruled === folder) continue;
    const name = ruled.slice(prefix.length).split('/')[0];
    if (name && !subfolders.has(name)) subfolders.set(name, false);
  }

  const folderItems = [...subfolders.keys()].sort().map((name) => {
    const full = prefix + name;
    const hasAssets = subfolders.get(name);
    return el(
      'li',
      {},
      el('button', {
        type: 'button',
        className: 'link',
        textContent: `${name}/`,
        dataset: { testid: 'folder', folder: full },
        onclick: () => openFolder(full, $('list-error')),
      }),
      hasAssets ? null : el('span', { className: 'count', textContent: 'rule only, no assets yet' }),
    );
  });
  $('folder-list').replaceChildren(...folderItems);

  state.listing = { folders, records: assets, truncated };
  // Ticks stay on assets still listed only.
  const listed = new Set(assets.map((r) => r.path));
  for (const path of state.checked) if (!listed.has(path)) state.checked.delete(path);
  renderAssets();
}

/** How the sort picker orders two records. */
const SORTS = {
  name: (a, b) => a.path.localeCompare(b.path),
  'name-desc': (a, b) => b.path.localeCompare(a.path),
  date: (a, b) => Date.parse(a.last_modified) - Date.parse(b.last_modified) || SORTS.name(a, b),
  'date-desc': (a, b) => Date.parse(b.last_modified) - Date.parse(a.last_modified) || SORTS.name(a, b),
  size: (a, b) => a.size - b.size || SORTS.name(a, b),
  'size-desc': (a, b) => b.size - a.size || SORTS.name(a, b),
};

/** The records of the listing that the filter box lets through, in the chosen order. */
function shownRecords() {
  const records = (state.listing && state.listing.records) || [];
  const filter = $('list-filter').value.trim().toLocaleLowerCase();
  const shown = records.filter((r) => baseName(r.path).toLocaleLowerCase().includes(filter));
  return shown.sort(SORTS[$('list-sort').value] || SORTS.name);
}

/** The asset rows, from the listing as last read, filtered and sorted as the tools say. */
function renderAssets() {
  const records = (state.listing && state.listing.records) || [];
  const truncated = Boolean(state.listing && state.listing.truncated);
  const shown = shownRecords();
  $('asset-list').tBodies[0].replaceChildren(...shown.map(assetRow));
  $('asset-list').hidden = shown.length === 0;
  // Nothing to filter or sort in an empty folder.
  $('list-tools').hidden = records.length === 0;
  $('list-empty').hidden = records.length !== 0 || !state.listing;
  const filter = $('list-filter').value.trim();
  $('list-no-match').hidden = records.length === 0 || shown.length !== 0;
  $('list-no-match').textContent = `No asset name here contains "${filter}".`;
  $('list-truncated').hidden = !truncated;
  $('list-truncated').textContent = truncated
    ? `Only the first ${PAGE_SIZE * MAX_PAGES} assets of this folder are shown.`
    : '';
  updateBulkBar();
}

/** Short local date and time of an HTTP date ("" when there is none). */
function shortDate(httpDate) {
  const date = new Date(httpDate);
  if (!httpDate || Number.isNaN(date.getTime())) return httpDate || '';
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * The media ID of a record for the default phone number: none, valid until when, or expired
 * (past its time, or made for bytes since replaced: either way a send by `id` would fail).
 */
function mediaIdState(r) {
  const phone = state.whatsapp && state.whatsapp.default_phone_number_id;
  const ids = r.whatsapp || {};
  const media = phone ? ids[phone] : Object.values(ids)[0];
  if (!media) return { state: 'none', text: 'none', title: 'No media ID yet' };
  if (media.valid) {
    return {
      state: 'valid',
      text: `valid until ${shortDate(media.expires_at)}`,
      title: `${media.media_id}, valid until ${media.expires_at}`,
    };
  }
  const replaced = Date.parse(media.expires_at) > Date.now();
  return {
    state: 'expired',
    text: 'expired',
    title: replaced
      ? `${media.media_id} was made for bytes since replaced: get a new one`
      : `${media.media_id} expired ${media.expires_at}: get a new one`,
  };
}

/** A thumbnail of an image or sticker (its public link, drawn small), else the kind's tag. */
function thumbnail(r) {
  if (r.kind === 'image' || r.kind === 'sticker') {
    return el('img', {
      className: 'thumb',
      src: r.link,
      alt: '',
      loading: 'lazy',
      decoding: 'async',
      width: 40,
      height: 40,
      dataset: { testid: 'thumb' },
    });
  }
  const tags = { video: 'VID', audio: 'AUD', document: 'DOC' };
  return el('span', { className: 'thumb kind-tag', textContent: tags[r.kind] || '?', title: r.kind || 'unknown' });
}

function assetRow(record) {
  const path = record.path;
  const media = mediaIdState(record);
  return el(
    'tr',
    {
      className: path === state.selected ? 'selected' : '',
      dataset: { testid: 'asset-row', path },
      onclick: () => selectAsset(path),
    },
    el(
      'td',
      { className: 'pick', onclick: (event) => event.stopPropagation() },
      el('input', {
        type: 'checkbox',
        checked: state.checked.has(path),
        dataset: { testid: 'pick', path },
        attrs: { 'aria-label': `Select ${baseName(path)}` },
        onchange: (event) => setChecked(path, event.target.checked),
      }),
    ),
    el('td', { className: 'thumb-col' }, thumbnail(record)),
    el(
      'td',
      { className: 'name' },
      el('button', { type: 'button', className: 'link', textContent: baseName(path) }),
      el('span', { className: 'kind', textContent: record.kind || record.content_type }),
      // Media a customer sent (imported under inbox/): the sender's file name, and the file.
      record.imported
        ? el('span', { className: 'count', dataset: { testid: 'sender-filename' }, textContent: ` ${record.filename} ` })
        : null,
      record.imported
        ? el('a', {
            href: record.link,
            download: record.filename,
            textContent: 'download',
            dataset: { testid: 'download' },
            onclick: (event) => event.stopPropagation(),
          })
        : null,
    ),
    el('td', { className: 'num', textContent: humanSize(record.size), title: `${record.size} bytes` }),
    el('td', { className: 'date-col', textContent: shortDate(record.last_modified), title: record.last_modified }),
    el(
      'td',
      {
        className: 'policy',
        dataset: { testid: 'row-policy' },
        title: `from ${explainSource(record.policy_source, state.policies && state.policies.folders)}`,
      },
      el('span', { className: 'policy-words', textContent: policyWords(record.cache_control) }),
      ' ',
      el('code', { className: 'raw', textContent: record.cache_control }),
    ),
    el('td', {
      className: `media-state ${media.state}`,
      textContent: media.text,
      title: media.title,
      dataset: { testid: 'media-state', state: media.state },
    }),
  );
}

function renderBreadcrumb(folder) {
  const nav = $('breadcrumb');
  const parts = folder === '' ? [] : folder.split('/');
  const items = [];
  const crumb = (label, target, current) =>
    current
      ? el('span', { textContent: label, attrs: { 'aria-current': 'page' } })
      : el('button', {
          type: 'button',
          className: 'link',
          textContent: label,
          dataset: { testid: 'crumb', folder: target },
          onclick: () => openFolder(target, $('list-error')),
        });
  items.push(crumb('root', '', parts.length === 0));
  parts.forEach((part, i) => {
    items.push(el('span', { className: 'sep', textContent: '/', attrs: { 'aria-hidden': 'true' } }));
    items.push(crumb(part, parts.slice(0, i + 1).join('/'), i === parts.length - 1));
  });
  nav.replaceChildren(...items);
}

// ---- folder policy and signed-only folders ---------------------------------------------

function currentRule() {
  const rules = (state.policies && state.policies.folders) || [];
  return rules.find((r) => r.folder === state.folder) || null;
}

/** The longest rule of a strict ancestor of `folder` (folder boundaries only). */
function inheritedRule(folder) {
  const rules = (state.policies && state.policies.folders) || [];
  let best = null;
  for (const rule of rules) {
    if (folder.startsWith(`${rule.folder}/`) && (!best || rule.folder.length > best.folder.length)) best = rule;
  }
  return best;
}

function renderFolderPolicy() {
  const root = state.folder === '';
  const rule = currentRule();
  const defaultPolicy = state.policies ? state.policies.default.cache_control : '';
  $('folder-policy-current').textContent = rule ? rule.cache_control : 'none';
  $('folder-policy-words').textContent = rule ? policyWords(rule.cache_control) : '';
  let origin = '';
  if (rule) {
    origin = `(${ruleOrigin(rule.source)}`;
    if (rule.shadows_config) origin += `; the config file's ${rule.shadows_config} applies again when removed`;
    origin += ')';
  }
  $('folder-policy-origin').textContent = origin;
  let inherited = '';
  if (root) {
    inherited = 'The root has no folder rule: assets without a rule or override get the default, ' +
      `${policyWithRaw(defaultPolicy)}.`;
  } else if (!rule) {
    const parent = inheritedRule(state.folder);
    inherited = parent
      ? `Assets here get ${policyWithRaw(parent.cache_control)} from the rule for ${parent.folder}.`
      : `Assets here get the default, ${policyWithRaw(defaultPolicy)}.`;
  }
  $('folder-policy-inherited').textContent = inherited;
  for (const id of ['folder-policy', 'folder-policy-choice', 'folder-policy-save', 'folder-policy-remove']) {
    $(id).disabled = root;
  }

  const tbody = $('policy-list').tBodies[0];
  const rows = [
    el(
      'tr',
      {},
      el('td', { textContent: '(default)' }),
      el('td', {}, policyCell(defaultPolicy)),
      el('td', { textContent: 'config file' }),
    ),
  ];
  for (const r of (state.policies && state.policies.folders) || []) {
    rows.push(
      el(
        'tr',
        {},
        el(
          'td',
          {},
          el('button', {
            type: 'button',
            className: 'link',
            textContent: r.folder,
            dataset: { rule: r.folder },
            onclick: () => openFolder(r.folder, $('list-error')),
          }),
        ),
        el('td', {}, policyCell(r.cache_control)),
        el('td', {
          textContent: ruleOrigin(r.source) + (r.shadows_config ? ` (shadows config ${r.shadows_config})` : ''),
        }),
      ),
    );
  }
  tbody.replaceChildren(...rows);
}

/** A policy in words, its directive small beside it. */
function policyCell(policy) {
  return el(
    'span',
    {},
    el('span', { className: 'policy-words', textContent: policyWords(policy) }),
    ' ',
    el('code', { className: 'raw', textContent: policy }),
  );
}

const CHOOSE_A_POLICY = 'Choose how long Meta may keep it first (or "custom…" and type a directive).';

/**
 * Whether the folder views still show `folder` of `session`: an action's answer (its error or
 * what it renders) is for the folder it was asked for, and is dropped once another is shown.
 */
function showsFolder(folder, session) {
  return session === state.session && state.folder === folder;
}

async function saveFolderPolicy() {
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

async function removeFolderPolicy() {
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

function renderFolderSigned() {
  const access = state.access;
  const configured = Boolean(access && access.signing_configured);
  $('folder-signed-section').hidden = !configured;
  $('signing-off-note').hidden = configured || !access;
  if (!configured) return;
  const folders = access.signed_folders || [];
  const exact = folders.find((f) => f.folder === state.folder);
  const parent = folders
    .filter((f) => state.folder.startsWith(`${f.folder}/`))
    .sort((a, b) => b.folder.length - a.folder.length)[0];
  let text = 'public';
  if (exact) text = `signed links only (${ruleOrigin(exact.source)})`;
  else if (parent) text = `signed links only, from ${parent.folder} (${ruleOrigin(parent.source)})`;
  $('folder-signed-current').textContent = text;
  const root = state.folder === '';
  $('folder-signed-on').disabled = root;
  $('folder-signed-off').disabled = root;
}

async function setFolderSigned(signed) {
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

/** After any change: the rules, the listing and the selected asset as the server now has them. */
async function afterChange() {
  try {
    await loadSettings();
  } catch (e) {
    showError($('list-error'), e);
  }
  await Promise.all([reloadFolder(), loadDetail()]);
}

// ---- uploads ----------------------------------------------------------------------------

/**
 * Upload the files into the folder shown. Names the listing already holds are replaced only
 * once the person says so (the dialog says what replacing does); the others go at once.
 */
async function uploadFiles(fileList) {
  const files = Array.from(fileList || []);
  if (files.length === 0) return;
  const folder = state.folder;
  const session = state.session;
  const cache = pickerValue('upload-cache');
  const listed = new Set(((state.listing && state.listing.records) || []).map((r) => r.path));
  const existing = files.filter((file) => listed.has(joinPath(folder, file.name)));
  // A listing cut short may not show every name: ask the server about the others.
  if (state.listing && state.listing.truncated) {
    const unlisted = files.filter((file) => !existing.includes(file));
    const found = await Promise.all(unlisted.map((file) => assetExists(joinPath(folder, file.name))));
    existing.push(...unlisted.filter((_, i) => found[i]));
    if (session !== state.session) return;
  }
  const fresh = files.filter((file) => !existing.includes(file));
  for (const file of fresh) startUpload(file, folder, cache);
  if (existing.length === 0) return;
  const replace = await askReplace(existing.map((file) => file.name), folder);
  if (session !== state.session) return;
  for (const file of existing) {
    if (replace) startUpload(file, folder, cache);
    else keptRow(file, folder);
  }
}

/** Whether an asset is stored at `path` (false when the server cannot say: the upload will). */
async function assetExists(path) {
  try {
    await api('GET', `/assets/${encodePath(path)}`);
    return true;
  } catch {
    return false;
  }
}

function joinPath(folder, name) {
  return folder === '' ? name : `${folder}/${name}`;
}

/** Resolves once the replace dialog is answered: true to replace. */
let replaceAnswer = null;

function askReplace(names, folder) {
  answerReplace(false);
  const dialog = $('confirm-replace');
  $('confirm-replace-title').textContent = names.length === 1
    ? `${folderLabel(folder)} already has a file named ${names[0]}. Replace it?`
    : `${folderLabel(folder)} already has files with these ${names.length} names. Replace them?`;
  $('confirm-replace-list').replaceChildren(...names.map((name) => el('li', { textContent: name })));
  return new Promise((resolve) => {
    replaceAnswer = resolve;
    if (!dialog.open) dialog.showModal();
    $('confirm-replace-no').focus();
  });
}

function answerReplace(replace) {
  const dialog = $('confirm-replace');
  if (dialog.open) dialog.close();
  const resolve = replaceAnswer;
  replaceAnswer = null;
  if (resolve) resolve(replace);
}

/** The row of a file not uploaded because the person kept the asset already there. */
function keptRow(file, folder) {
  const target = joinPath(folder, file.name);
  const row = el(
    'li',
    { className: 'kept', dataset: { testid: 'upload', name: file.name, path: target, folder, state: 'kept' } },
    el('span', { className: 'name', textContent: target }),
    el('span', {
      textContent: 'not uploaded: the existing file was kept',
      dataset: { testid: 'upload-status' },
    }),
  );
  $('uploads').prepend(row);
  showUploadsOf(state.folder);
}

/**
 * Upload rows belong to the folder they were made in: only the folder shown lists its own,
 * and a line says how many other folders' rows there are.
 */
function showUploadsOf(folder) {
  let elsewhere = 0;
  for (const row of $('uploads').children) {
    row.hidden = row.dataset.folder !== folder;
    if (row.hidden) elsewhere += 1;
  }
  const note = $('uploads-elsewhere');
  note.hidden = elsewhere === 0;
  note.textContent = elsewhere === 1
    ? '1 upload made in another folder is listed there.'
    : `${elsewhere} uploads made in other folders are listed there.`;
}

/**
 * One XMLHttpRequest per file (fetch cannot report upload progress). Its row is keyed on the
 * target path: a new upload to the same path replaces the row of a finished one, never that of
 * one still running (both rows stay, the newest first).
 */
function startUpload(file, folder, cache) {
  if (state.token === null) return;
  const token = state.token;
  const session = state.session;
  const list = $('uploads');
  const target = joinPath(folder, file.name);
  for (const old of list.querySelectorAll('li[data-testid="upload"]')) {
    if (old.dataset.path === target && old.dataset.state !== 'uploading') old.remove();
  }
  const progress = el('progress', { max: 1, value: 0, attrs: { 'aria-label': `Upload of ${target}` } });
  const status = el('span', { textContent: 'uploading', dataset: { testid: 'upload-status' } });
  const row = el(
    'li',
    {
      dataset: { testid: 'upload', name: file.name, path: target, folder, state: 'uploading' },
      title: `${target} (${file.size} bytes)`,
    },
    el('span', { className: 'name', textContent: target }),
    progress,
    status,
  );
  list.prepend(row);
  showUploadsOf(state.folder);

  const form = new FormData();
  form.append('folder', folder);
  if (cache) form.append('cache', cache);
  // Before the file: the server converts the file as it arrives.
  form.append('convert', $('upload-convert').checked ? 'true' : 'false');
  form.append('file', file, file.name);

  const xhr = new XMLHttpRequest();
  xhr.open('POST', `${API}/assets`);
  xhr.setRequestHeader('Authorization', `Bearer ${token}`);
  xhr.setRequestHeader('Accept', 'application/json');
  xhr.upload.onprogress = (event) => {
    if (event.lengthComputable && event.total > 0) {
      progress.max = event.total;
      progress.value = event.loaded;
    }
  };
  const fail = (message) => {
    row.classList.add('failed');
    row.dataset.state = 'failed';
    status.textContent = `error: ${message}`;
  };
  xhr.onload = () => {
    const body = parseJson(xhr.responseText);
    if (xhr.status >= 200 && xhr.status < 300) {
      progress.value = progress.max;
      row.classList.add('done');
      row.dataset.state = 'done';
      status.textContent = 'done';
      // 200 rather than 201: an asset was there and these bytes replaced it.
      if (xhr.status === 200) {
        row.append(
          el('span', {
            className: 'note',
            textContent: '(replaced the existing asset: links already sent now serve these bytes)',
            dataset: { testid: 'upload-note' },
          }),
        );
      }
      const path = body && body.path;
      scheduleFolderReload();
      if (path && path === state.selected) loadDetail();
      return;
    }
    const error = errorFromBody(xhr.status, body);
    if (xhr.status === 401 && !sessionEnded(error.message, token, session)) {
      fail(staleTokenError().message);
      return;
    }
    fail(error.message);
    // A refused file comes with the command that makes it acceptable: show it, ready to copy.
    const fix = body && body.error && typeof body.error.fix === 'string' ? body.error.fix : '';
    if (fix) {
      row.append(
        el(
          'span',
          { className: 'fix' },
          el('span', { textContent: 'fix: ' }),
          el('code', { textContent: fix, dataset: { testid: 'upload-fix' } }),
        ),
      );
    }
  };
  xhr.onerror = () => fail('the connection failed before the server answered');
  xhr.onabort = () => fail('the upload was cancelled');
  xhr.ontimeout = () => fail('the upload timed out');
  xhr.send(form);
}

function setUpDropZone() {
  const zone = $('drop-zone');
  const hasFiles = (event) => Array.from(event.dataTransfer?.types || []).includes('Files');
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
      zone.classList.add('dragover');
    });
  }
  zone.addEventListener('dragleave', (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove('dragover');
  });
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragover');
    uploadFiles(event.dataTransfer?.files);
  });
  // A file dropped next to the zone must not make the browser open it in place of the page.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (event) => {
      if (zone.contains(event.target) || !hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'none';
    });
  }
  $('file-input').addEventListener('change', (event) => {
    const files = Array.from(event.target.files || []);
    event.target.value = '';
    uploadFiles(files);
  });
}

// ---- ticked assets: bulk actions ---------------------------------------------------------

function setChecked(path, on) {
  if (on) state.checked.add(path);
  else state.checked.delete(path);
  updateBulkBar();
}

/** The bulk bar: shown while assets are ticked, its buttons waiting while one runs. */
function updateBulkBar() {
  const count = state.checked.size;
  $('bulk-bar').hidden = count === 0 && !$('bulk-status').textContent;
  // Nothing ticked but an outcome to tell: the bar shows only that.
  $('bulk-bar').classList.toggle('idle', count === 0);
  const shown = [...$('asset-list').tBodies[0].querySelectorAll('input[data-testid="pick"]')];
  // Ticked assets the filter hides are still acted on: say so.
  const hidden = count - shown.filter((box) => state.checked.has(box.dataset.path)).length;
  $('bulk-count').textContent = (count === 1 ? '1 asset selected' : `${count} assets selected`) +
    (hidden > 0 ? ` (${hidden} hidden by the filter)` : '');
  const all = $('select-all');
  all.checked = shown.length > 0 && shown.every((box) => box.checked);
  all.indeterminate = !all.checked && shown.some((box) => box.checked);
  const none = count === 0 || state.bulkBusy;
  $('bulk-delete').disabled = none;
  $('bulk-policy-save').disabled = none;
  $('bulk-clear').disabled = state.bulkBusy;
  const unavailable = mediaIdsUnavailable();
  $('bulk-media').disabled = none || Boolean(unavailable);
  $('bulk-media').title = unavailable;
  $('bulk-media-note').hidden = !unavailable || count === 0;
  $('bulk-media-note').textContent = unavailable;
}

/**
 * Run `action` on each ticked asset in turn, then say how many went and what failed for each
 * one that did not. The listing and the open asset are read again afterwards.
 */
async function runBulk(label, action) {
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

function bulkDelete() {
  const paths = [...state.checked].sort();
  if (paths.length === 0 || state.bulkBusy) return;
  openDeleteDialog(paths);
}

async function bulkPolicy() {
  const value = pickerValue('bulk-policy');
  await runBulk(value ? `Cache policy ${policyWithRaw(value)}` : 'Override removed', (path) =>
    api('PATCH', `/assets/${encodePath(path)}`, { cache_control: value || null }));
}

async function bulkMediaIds() {
  if (mediaIdsUnavailable()) return;
  await runBulk('Media IDs', (path) => api('POST', '/whatsapp/media', { path }));
}

// ---- the selected asset -----------------------------------------------------------------

async function selectAsset(path) {
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
function closeDetail() {
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
function detailReady() {
  return Boolean(state.record && state.record.path === state.selected && !$('asset-detail').hidden);
}

/**
 * Whether the panel still shows `path` in `session`: an action's answer (its error, or what it
 * renders) is for the asset it was asked for, and is dropped once another is shown.
 */
function showsAsset(path, session) {
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

function updateDetailActions() {
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
async function loadDetail() {
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

function renderMediaId(r) {
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

async function loadFetchLog(path) {
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

// ---- the override -----------------------------------------------------------------------

async function setOverride(value) {
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

// ---- copying ----------------------------------------------------------------------------

function hideCopyFallback() {
  $('copy-fallback').hidden = true;
  $('copy-fallback-label').hidden = true;
}

async function copyText(text) {
  const status = $('copy-status');
  status.textContent = '';
  hideCopyFallback();
  try {
    if (!navigator.clipboard || !navigator.clipboard.writeText) throw new Error('no clipboard access');
    await navigator.clipboard.writeText(text);
    status.textContent = 'Copied';
  } catch {
    // No clipboard (an insecure origin, or permission refused): let the person copy it.
    const area = $('copy-fallback');
    area.value = text;
    area.hidden = false;
    $('copy-fallback-label').hidden = false;
    area.focus();
    area.select();
    status.textContent = 'Could not reach the clipboard: the text below is selected, press Ctrl+C (⌘C) to copy it.';
  }
}

function copyField(pick) {
  if (!detailReady()) return;
  const r = state.record;
  const value = pick(r);
  if (value === undefined || value === null) return;
  copyText(typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

// ---- WhatsApp media IDs -----------------------------------------------------------------

// "Get" reuses a valid ID (uploading only when there is none); "Refresh" uploads the current
// bytes again for a new ID with a full 30 days, e.g. before a campaign outlives the old one.
async function requestMediaId(force) {
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

// ---- deleting ---------------------------------------------------------------------------

/** Ask before deleting `paths` (the ticked assets), or the asset shown when none are given. */
function openDeleteDialog(paths) {
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

function closeDeleteDialog() {
  const dialog = $('confirm-delete');
  if (dialog.open) dialog.close();
}

async function confirmDelete() {
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

// ---- wiring -----------------------------------------------------------------------------

function onSubmit(id, handler) {
  $(id).addEventListener('submit', (event) => {
    event.preventDefault();
    handler();
  });
}

function start() {
  onSubmit('sign-in-form', () => signIn($('token').value.trim()));
  $('sign-out').addEventListener('click', signOut);

  onSubmit('go-folder-form', async () => {
    const folder = normalizeFolder($('go-folder').value);
    if (await openFolder(folder, $('go-folder-error'))) $('go-folder').value = '';
  });

  onSubmit('folder-policy-form', saveFolderPolicy);
  $('folder-policy-remove').addEventListener('click', removeFolderPolicy);
  $('folder-signed-on').addEventListener('click', () => setFolderSigned(true));
  $('folder-signed-off').addEventListener('click', () => setFolderSigned(false));

  setUpDropZone();

  for (const select of document.querySelectorAll('select[data-picker]')) setUpPicker(select);
  onSubmit('override-form', () => setOverride(pickerValue('override-policy')));
  $('override-remove').addEventListener('click', () => setOverride(null));

  $('copy-link').addEventListener('click', () => copyField((r) => r.link));
  $('copy-link-json').addEventListener('click', () => copyField((r) => r.message));
  $('copy-id-json').addEventListener('click', () => copyField((r) => r.message_by_id));
  $('copy-voice-json').addEventListener('click', () => copyField((r) => r.message_voice));
  $('copy-template-header').addEventListener('click', () => copyField((r) => r.template_header));
  $('copy-template-header-id').addEventListener('click', () => copyField((r) => r.template_header_by_id));

  $('list-filter').addEventListener('input', renderAssets);
  $('list-sort').addEventListener('change', renderAssets);
  $('select-all').addEventListener('change', (event) => {
    for (const box of $('asset-list').tBodies[0].querySelectorAll('input[data-testid="pick"]')) {
      box.checked = event.target.checked;
      setChecked(box.dataset.path, box.checked);
    }
  });
  $('bulk-clear').addEventListener('click', () => {
    state.checked.clear();
    $('bulk-status').textContent = '';
    $('bulk-errors').replaceChildren();
    $('bulk-errors').hidden = true;
    renderAssets();
  });
  $('bulk-delete').addEventListener('click', bulkDelete);
  $('bulk-media').addEventListener('click', bulkMediaIds);
  onSubmit('bulk-policy-form', bulkPolicy);
  $('confirm-replace-yes').addEventListener('click', () => answerReplace(true));
  $('confirm-replace-no').addEventListener('click', () => answerReplace(false));
  // Escape closes a dialog without an answer: for the replace question, that is "keep".
  // (A close that comes after a new question opened the dialog again is the old one's.)
  $('confirm-replace').addEventListener('close', () => {
    if (!$('confirm-replace').open) answerReplace(false);
  });

  $('media-id-get').addEventListener('click', () => requestMediaId(false));
  $('media-id-refresh').addEventListener('click', () => requestMediaId(true));

  $('fetch-log-reload').addEventListener('click', () => {
    if (detailReady()) loadFetchLog(state.record.path);
  });

  $('delete-asset').addEventListener('click', () => openDeleteDialog());
  $('confirm-delete-yes').addEventListener('click', confirmDelete);
  $('confirm-delete-no').addEventListener('click', closeDeleteDialog);

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
  else showSignIn('');
}

start();
