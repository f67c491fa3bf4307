// Copying to the clipboard, with a selected text box to copy from by hand when the browser
// gives no clipboard access (an insecure origin, or permission refused).

import { $ } from './dom.js';

export function hideCopyFallback() {
  $('copy-fallback').hidden = true;
  $('copy-fallback-label').hidden = true;
}

export async function copyText(text) {
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
