// Paths, sizes and dates as the page writes them. Pure functions of their arguments.

/** A path or folder in an API URL: each segment percent-encoded, joined by "/". */
export function encodePath(path) {
  return path.split('/').map(encodeURIComponent).join('/');
}

export function folderLabel(folder) {
  return folder === '' ? '/' : folder;
}

export function normalizeFolder(text) {
  return text.trim().replace(/^\/+|\/+$/g, '');
}

export function parentFolder(path) {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path) {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(folder, name) {
  return folder === '' ? name : `${folder}/${name}`;
}

/** Sizes in decimal units, as WhatsApp's limits are (1 MB = 1,000,000 bytes). */
export function humanSize(bytes) {
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

export function humanDuration(secs) {
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
export function withLocalTime(httpDate) {
  if (!httpDate) return '';
  const date = new Date(httpDate);
  return Number.isNaN(date.getTime()) ? httpDate : `${httpDate} (${date.toLocaleString()})`;
}

/** Short local date and time of an HTTP date ("" when there is none). */
export function shortDate(httpDate) {
  const date = new Date(httpDate);
  if (!httpDate || Number.isNaN(date.getTime())) return httpDate || '';
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
