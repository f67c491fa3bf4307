// The cache policies in plain words, and the pickers that choose them.
//
// The API keeps its exact `Cache-Control` syntax; the page translates, and shows the raw
// directive small beside.

import { $, el } from './dom.js';
import { humanDuration } from './format.js';

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
export function policyWords(policy) {
  const preset = POLICY_PRESETS.find(([value]) => value === policy);
  if (preset) return preset[1];
  const maxAge = /^max-age=(\d+)$/.exec(policy || '');
  if (maxAge) return `re-use for ${humanDuration(Number(maxAge[1]))}`;
  return policy || '';
}

/** A policy in words with its directive: "re-use for 1 day (max-age=86400)". */
export function policyWithRaw(policy) {
  const words = policyWords(policy);
  return words === policy ? policy : `${words} (${policy})`;
}

/** What Meta's media fetcher does with each policy (WHATSAPP_MEDIA.md §2). */
export function policyMeaning(policy) {
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

export function ruleOrigin(source) {
  return source === 'config' ? 'config file' : 'set through the API';
}

/** A person's reading of a `policy_source` / `signed_source` value. */
export function explainSource(source, rules) {
  if (source === 'asset') return "this asset's own override";
  if (source === 'default') return 'the default (config file)';
  if (source && source.startsWith('folder:')) {
    const folder = source.slice('folder:'.length);
    const rule = (rules || []).find((r) => r.folder === folder);
    return `the folder rule for ${folder}${rule ? `, ${ruleOrigin(rule.source)}` : ''}`;
  }
  return '';
}

export const CHOOSE_A_POLICY = 'Choose how long Meta may keep it first (or "custom…" and type a directive).';

// A picker is a <select id="NAME-choice" data-picker="NAME"> of the presets (and "custom…"),
// the text field NAME for a custom directive, shown only for "custom…", and NAME-raw showing
// the directive that will be sent.

export function setUpPicker(select) {
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
export function pickerValue(name) {
  const select = $(`${name}-choice`);
  return select.value === 'custom' ? $(name).value.trim() : select.value;
}

/** Show `value` in a picker: its preset when it is one, else "custom…" with exactly `value`. */
export function setPicker(name, value) {
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
