/**
 * The control-plane API as the page calls it: same origin, JSON, and the token as a bearer
 * header on every call. The token lives in this tab's sessionStorage only: never in a URL, a
 * cookie (credentials are omitted) or localStorage, and it is gone when the tab closes.
 *
 * A 401 calls the handler the page registers (back to the login form); every other error is an
 * `ApiError` carrying the status and the API's error body (`detail`, `error`, `field`,
 * `current_version`), for the caller to explain.
 */

const TOKEN_KEY = "counterpoint.token";

export class ApiError extends Error {
  constructor(status, body, message) {
    super(message);
    this.status = status;
    this.body = body || {};
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

let onUnauthorized = () => {};

/** `fn(error)` runs on every 401 (missing, unknown or wrong token). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** `METHOD path` with an optional JSON body; the decoded JSON answer, or an ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    });
  } catch (err) {
    throw new ApiError(0, {}, `cannot reach the control plane (${err.message})`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `${response.status} ${response.statusText}`;
    const error = new ApiError(response.status, data, detail);
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  return data;
}

/** A path segment (run, stage and domain names) that stays one segment. */
export const seg = (name) => encodeURIComponent(name);

/**
 * The token's role from GET /v1/whoami: "operator" or "viewer" (a 401 is thrown, and the page
 * goes back to sign-in). A viewer gets a read-only page up front.
 */
export async function fetchRole() {
  const me = await api("GET", "/v1/whoami");
  return me.role === "operator" ? "operator" : "viewer";
}
