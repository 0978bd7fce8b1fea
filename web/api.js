// The dashboard's calls to caviard's API (schemas/api.md): the token from sessionStorage as a
// bearer header, a 401 reported as an AuthError so that the page asks for the token.

const TOKEN_KEY = 'caviar-token';

export class AuthError extends Error {}

// A reply other than 2xx or 401: its status and its parsed body (null when not JSON).
export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// GET path and return its JSON; AuthError on 401, ApiError on any other failure.
export async function get(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const res = await fetch(path, { headers, cache: 'no-store' });
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  if (res.status === 401) throw new AuthError(body?.error ?? 'missing or wrong API token');
  if (!res.ok) throw new ApiError(res.status, `${path}: ${res.status} ${body?.error ?? ''}`, body);
  return body;
}

// POST body (an object, sent as JSON) to path; returns {status, body} whatever the status, so that
// a form can show the API's refusal; AuthError on 401.
export async function post(path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body) });
  let reply = null;
  try {
    reply = await res.json();
  } catch (e) {
    reply = null;
  }
  if (res.status === 401) throw new AuthError(reply?.error ?? 'missing or wrong API token');
  return { status: res.status, body: reply };
}

// Every row of a paginated list (schemas/api.md "Pagination"), at most maxPages pages.
export async function getAll(path, key, maxPages = 20) {
  const rows = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page++) {
    const sep = path.includes('?') ? '&' : '?';
    const body = await get(cursor ? `${path}${sep}limit=1000&after=${encodeURIComponent(cursor)}`
                                  : `${path}${sep}limit=1000`);
    rows.push(...body[key]);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return rows;
}
