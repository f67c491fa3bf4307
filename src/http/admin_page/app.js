// media-origin admin page: signs in with the admin token and drives the admin API (/api).
//
// No framework and no build step: the server compiles these files in and serves them under a
// strict Content-Security-Policy (no inline script or style, connections to this origin only).
// Every node is built with DOM calls and text is set with textContent, never parsed as markup:
// asset and folder names are chosen by whoever uploads them.
//
// This is the entry module, the one index.html loads: it wires the page's controls and starts.
// The script is split into ES modules by concern, so that each stays short enough to read
// whole. They import each other by relative path, each only from the ones listed below it,
// so no two import each other, and only this one runs anything when it is loaded:
//
//   session.js     signing in and out
//   delete.js      deleting one asset or the ticked ones, behind a confirmation
//   bulk.js        bulk actions on the ticked assets
//   actions.js     the asset panel's override, copy and media-ID buttons
//   uploads.js     drop zone, replace question, one row per upload
//   rules.js       changing the folder's cache rule and signed-links state
//   refresh.js     reading the server's state again after a change
//   folder.js      going to a folder: listing, breadcrumb, subfolders, its rules shown
//   assets.js      the asset table: filter, sort, rows
//   detail.js      the asset panel: choose, load, show
//   selection.js   ticked assets and the bulk bar
//   copy.js        the clipboard, with a by-hand fallback
//   api.js         the admin API client and its errors
//   policy.js      cache policies in plain words; the policy pickers
//   state.js       what the page knows, and where it is (the URL's fragment)
//   format.js      paths, sizes, dates
//   dom.js         element look-up and construction

import { $, onSubmit } from './dom.js';
import { normalizeFolder } from './format.js';
import { state } from './state.js';
import { pickerValue, setUpPicker } from './policy.js';
import { whenTokenRefused } from './api.js';
import { setChecked } from './selection.js';
import { detailReady, loadFetchLog } from './detail.js';
import { renderAssets } from './assets.js';
import { openFolder } from './folder.js';
import { removeFolderPolicy, saveFolderPolicy, setFolderSigned } from './rules.js';
import { answerReplace, setUpDropZone } from './uploads.js';
import { copyField, requestMediaId, setOverride } from './actions.js';
import { bulkMediaIds, bulkPolicy } from './bulk.js';
import { bulkDelete, closeDeleteDialog, confirmDelete, openDeleteDialog } from './delete.js';
import { endRefusedSession, showSignIn, signIn, signOut, TOKEN_KEY } from './session.js';

function start() {
  // A 401 for the session's token ends the session: the API client only reports it.
  whenTokenRefused(endRefusedSession);

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
