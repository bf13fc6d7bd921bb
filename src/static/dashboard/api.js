// The dashboard's only way to the data: GET requests to the JSON API of the server that served
// the page. A token the user gives is kept for this tab only (sessionStorage) and sent as Bearer.

export const API = "/api/v1";

const TOKEN_KEY = "monitor-server.token";

/** An answer that was not a success, with the API's own message and per-field reasons. */
export class ApiError extends Error {
  constructor(status, message, errors, url) {
    super(message);
    this.status = status;
    this.errors = errors || {};
    this.url = url;
  }
}

/** The token this tab sends, or null. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Keeps `value` as this tab's token; an empty value forgets it. */
export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * GET `path` (under /api/v1) with `params`: an object whose array values repeat the parameter,
 * or a URLSearchParams. Resolves to the parsed JSON, or null for a 204 (an empty listing).
 */
export async function get(path, params = {}) {
  const query = params instanceof URLSearchParams ? params : toSearch(params);
  const text = query.toString();
  const url = `${API}${path}${text ? `?${text}` : ""}`;
  const headers = { Accept: "application/json" };
  const secret = token();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  let response;
  try {
    // No cookies or cached Basic credentials: the token is the header above. ("include" would
    // also let a 401 open the browser's own login dialog.)
    response = await fetch(url, { headers, credentials: "omit" });
  } catch (err) {
    throw new ApiError(0, `The server did not answer (${err.message}).`, {}, url);
  }
  if (response.status === 204) return null;
  const body = await response.text();
  let json = null;
  try {
    json = body ? JSON.parse(body) : null;
  } catch {
    // Not JSON (a proxy's error page, say): shown as the status alone.
  }
  if (!response.ok) {
    const message = (json && json.message) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, json && json.errors, url);
  }
  return json;
}

/** The entries of a listing for a menu: its first `limit`, so a menu never grows without bound. */
export async function menuItems(path, key, limit = 1000) {
  const answer = await get(path, { per_page: limit });
  return answer ? answer[key] || [] : [];
}

function toSearch(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) query.append(name, one);
  }
  return query;
}
