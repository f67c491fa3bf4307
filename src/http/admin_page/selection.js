// Ticked assets and the bulk bar that acts on them: which are ticked, and what the bar shows
// (how many, how many the filter hides, which buttons may be pressed). The bulk actions
// themselves are in bulk.js and delete.js.

import { $ } from './dom.js';
import { mediaIdsUnavailable, state } from './state.js';

export function setChecked(path, on) {
  if (on) state.checked.add(path);
  else state.checked.delete(path);
  updateBulkBar();
}

/** The bulk bar: shown while assets are ticked, its buttons waiting while one runs. */
export function updateBulkBar() {
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
