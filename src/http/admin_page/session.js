// Signing in and out. The token is kept in sessionStorage for the tab's life; signing out, or
// the server refusing the token, empties every view and drops every answer still on its way.

import { $ } from './dom.js';
import { parentFolder } from './format.js';
import { readLocation, state } from './state.js';
import { showError } from './api.js';
import { updateBulkBar } from './selection.js';
import { selectAsset, updateDetailActions } from './detail.js';
import { openFolder } from './folder.js';
import { loadSettings } from './refresh.js';
import { answerReplace } from './uploads.js';
import { closeDeleteDialog } from './delete.js';

export const TOKEN_KEY = 'media-origin.admin-token';

export function showSignIn(message) {
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

/** The server refused the session's token: back to sign-in, saying why (see `sessionEnded`). */
export function endRefusedSession() {
  const wasSignedIn = !$('app').hidden;
  sessionStorage.removeItem(TOKEN_KEY);
  resetView();
  // The API's own words ("invalid bearer token") mean little to whoever runs a campaign:
  // say what happened and what to do, in a sentence.
  showSignIn(wasSignedIn ? TOKEN_NO_LONGER_ACCEPTED : WRONG_TOKEN);
}

const WRONG_TOKEN =
  'That is not the admin token this server expects. Paste it again exactly as you were given ' +
  'it (nothing missing, no spaces around it), or ask whoever runs the server for the current one.';

const TOKEN_NO_LONGER_ACCEPTED =
  'You were signed out: the server no longer accepts the token this page was using (it was ' +
  'changed, or the server started again with a new one). Sign in with the current admin token.';

export function signOut() {
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

export async function signIn(token) {
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
