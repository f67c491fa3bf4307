// Uploads: the drop zone and file picker, the replace question for names the folder already
// holds, and one row per file with its progress and outcome.

import { $, el } from './dom.js';
import { encodePath, folderLabel, joinPath } from './format.js';
import { state } from './state.js';
import { pickerValue } from './policy.js';
import { api, API, errorFromBody, parseJson, sessionEnded, staleTokenError } from './api.js';
import { loadDetail } from './detail.js';
import { scheduleFolderReload, showUploadsOf } from './folder.js';

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

export function answerReplace(replace) {
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

export function setUpDropZone() {
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
