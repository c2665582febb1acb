// The JSON API of the server that served this page, with the API key kept in localStorage.

const KEY = 'mira.apiKey';

export const apiKey = () => localStorage.getItem(KEY) ?? '';
export const setApiKey = (key) => (key ? localStorage.setItem(KEY, key) : localStorage.removeItem(KEY));

/** A problem+json answer (or a network failure) as an Error whose message is fit to show. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code;
  }
}

function headers() {
  const key = apiKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** `json` sends a JSON body, `form` a FormData; resolves with the parsed answer. */
export async function api(path, { method = 'GET', json, form, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (json !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (form) init.body = form;
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, { detail: `The server cannot be reached (${err.message}).` });
  }
  const body = res.status === 204 ? undefined : await res.json().catch(() => undefined);
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

/** An image the API serves, as an object URL (an <img src> cannot send the key). */
export async function imageUrl(path, signal) {
  const res = await fetch(path, { headers: headers(), signal });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => undefined));
  return URL.createObjectURL(await res.blob());
}

/** A new element with attributes, properties (`on*` listeners) and children; text stays text. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  node.append(...children.filter((c) => c !== undefined && c !== null));
  return node;
}

const alertBox = () => document.getElementById('alert');

/** Shows an error in the page's alert line (announced by screen readers); none clears it. */
export function showError(err) {
  const box = alertBox();
  if (!err) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.textContent = err.message;
  box.hidden = false;
  if (err.status === 401) document.getElementById('key-panel').open = true;
}
