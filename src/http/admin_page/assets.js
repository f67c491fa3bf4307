// The asset table of the folder shown: filtered by name and sorted as the tools say, one row
// per asset with its tick, thumbnail, size, date, cache policy and media-ID state.

import { $, el } from './dom.js';
import { baseName, humanSize, shortDate } from './format.js';
import { MAX_PAGES, PAGE_SIZE, state } from './state.js';
import { explainSource, policyWords } from './policy.js';
import { setChecked, updateBulkBar } from './selection.js';
import { selectAsset } from './detail.js';

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
export function renderAssets() {
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
