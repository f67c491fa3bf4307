// What the page knows: the session, the folder and asset shown, the server's settings as last
// read, the ticks, and the counters that let a late answer for an earlier view be dropped.
// Every module reads and writes this one object; the few questions asked of it from several
// views live here too, and where we are is kept in the URL's fragment, so a reload comes back.

import { normalizeFolder } from './format.js';

/** Records per listing request (the API's maximum) and how many pages one folder view reads. */
export const PAGE_SIZE = 1000;
export const MAX_PAGES = 20;

export const state = {
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

/**
 * Whether the folder views still show `folder` of `session`: an action's answer (its error or
 * what it renders) is for the folder it was asked for, and is dropped once another is shown.
 */
export function showsFolder(folder, session) {
  return session === state.session && state.folder === folder;
}

/** Why media IDs cannot be had here, in a sentence; "" when they can. */
export function mediaIdsUnavailable() {
  const wa = state.whatsapp;
  if (!wa || wa.configured) return '';
  return 'Media IDs are not available: this server is not connected to WhatsApp yet ' +
    `(${wa.missing}). Ask whoever runs it to set that up; the link works without a media ID.`;
}

/** Where we are, from the URL's fragment (kept there, so a reload comes back). */
export function readLocation() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { folder: normalizeFolder(params.get('folder') || ''), asset: params.get('asset') };
}

/** Keep the folder and asset shown in the URL's fragment, without a history entry. */
export function writeLocation() {
  const params = new URLSearchParams();
  if (state.folder) params.set('folder', state.folder);
  if (state.selected) params.set('asset', state.selected);
  const hash = params.toString();
  history.replaceState(null, '', hash ? `#${hash}` : location.pathname + location.search);
}
