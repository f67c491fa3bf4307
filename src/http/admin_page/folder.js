// The folder view: going to a folder (its listing read page by page), its breadcrumb and
// subfolders, its cache rule and signed-links state as they stand, and which upload rows show.

import { $, el } from './dom.js';
import { folderLabel, parentFolder } from './format.js';
import { MAX_PAGES, PAGE_SIZE, state, writeLocation } from './state.js';
import { policyWithRaw, policyWords, ruleOrigin, setPicker } from './policy.js';
import { api, showError } from './api.js';
import { closeDetail } from './detail.js';
import { renderAssets } from './assets.js';

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
export async function openFolder(folder, errorTarget) {
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

export function reloadFolder() {
  return openFolder(state.wantedFolder ?? state.folder, $('list-error'));
}

let refreshTimer = null;

/** Reload the listing soon, once, however many uploads finish meanwhile. */
export function scheduleFolderReload() {
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

/**
 * Upload rows belong to the folder they were made in: only the folder shown lists its own,
 * and a line says how many other folders' rows there are.
 */
export function showUploadsOf(folder) {
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
