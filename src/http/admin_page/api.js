// The admin API client: every call carries the session's token as a bearer token and comes
// back as parsed JSON or an ApiError with the API's own message.
//
// A 401 for the token still in use ends the session. What ending it means (views emptied, back
// to sign-in) is the session module's business: it registers that with `whenTokenRefused`, so
// this module, which every view uses, imports nothing from the views.

import { state } from './state.js';

export const API = '/api';

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** The message of an error answer (`{"error": {"code", "message"}}`), with Meta's own words. */
export function errorFromBody(status, body) {
  const error = body && typeof body === 'object' ? body.error : null;
  if (error && typeof error.message === 'string') {
    let message = error.message;
    if (error.meta && typeof error.meta.message === 'string' && !message.includes(error.meta.message)) {
      message += ` (Meta: ${error.meta.message})`;
    }
    return new ApiError(status, error.code || 'error', message, body);
  }
  return new ApiError(status, 'http_error', `the server answered HTTP ${status}`, body);
}

export function parseJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The rejection of a request whose session is over: the sign-in view says why, if anything. */
function signedOutError(message) {
  const error = new ApiError(401, 'signed_out', message);
  error.signedOut = true;
  return error;
}

/** A 401 for a request sent with an earlier token: only that request failed. */
export function staleTokenError() {
  return new ApiError(
    401,
    'stale_token',
    'the server refused it: it was sent with an admin token this page no longer uses',
  );
}

/**
 * Call the admin API with the token. Resolves to the parsed JSON (null for 204); rejects with
 * an ApiError. A 401 ends the session (the page goes back to sign-in with the API's message)
 * only if the request carried the current session's token: a late 401 for a request sent
 * before the token changed fails that request alone.
 */
export async function api(method, path, body) {
  const token = state.token;
  const session = state.session;
  if (token === null) throw signedOutError('signed out');
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (e) {
    throw new ApiError(0, 'network', `the server did not answer (${e.message})`);
  }
  const data = parseJson(await response.text());
  if (response.ok) return data;
  const error = errorFromBody(response.status, data);
  if (response.status === 401) {
    if (!sessionEnded(error.message, token, session)) throw staleTokenError();
    error.signedOut = true;
  }
  throw error;
}

/** Show an error's message in `target`; one that ended the session is on the sign-in view. */
export function showError(target, error) {
  if (error instanceof ApiError && error.signedOut) return;
  target.textContent = error instanceof Error ? error.message : String(error);
}

/** What the page does when the server refuses the session's token (see `whenTokenRefused`). */
let tokenRefused = () => {};

/** Set what happens when the server refuses the session's token: the session module ends it. */
export function whenTokenRefused(handler) {
  tokenRefused = handler;
}

/**
 * A request sent with `token` in `session` got a 401. If that is still the session's token, the
 * server no longer takes it (changed, or the server restarted with a generated one): back to
 * sign-in, and true. A request from an earlier session or token says nothing about the
 * current one: false, and nothing changes.
 */
export function sessionEnded(message, token, session) {
  if (token === null || token !== state.token || session !== state.session) return false;
  tokenRefused();
  return true;
}
