// Search by text, by a result (similar images) or by an uploaded image; results as a grid.
import { api, el, imageUrl, showError } from './api.js';

const $ = (id) => document.getElementById(id);

let selected = () => undefined;
let last; // the last query, run again when the options change
let running; // AbortController of the search in flight
let thumbnails = []; // object URLs of the shown results

/** The search options as API params; a bad field throws an Error that names it. */
function params(collection) {
  const k = Number($('k').value);
  if (!Number.isInteger(k) || k < 1 || k > 100) throw new Error('Results: give a whole number from 1 to 100.');
  const out = { collectionId: collection.id, k };
  const filter = $('filter').value.trim();
  if (filter) {
    let value;
    try {
      value = JSON.parse(filter);
    } catch {
      throw new Error('Metadata filter: this is not JSON.');
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('Metadata filter: give a JSON object, e.g. {"split": "demo"}.');
    out.filter = value;
  }
  if (collection.reranker) {
    const candidates = Number($('candidates').value);
    if ($('rerank').checked && !(Number.isInteger(candidates) && candidates >= 1 && candidates <= 200)) throw new Error('Candidates: give a whole number from 1 to 200.');
    out.rerank = $('rerank').checked ? { enabled: true, candidates } : { enabled: false };
  }
  return out;
}

/** A score to read (tiny ITM probabilities keep a digit), the exact number in <data value>. */
const score = (cls, v) => el('dd', { class: cls }, el('data', { value: v, text: v === 0 || Math.abs(v) >= 0.001 ? v.toFixed(3) : v.toExponential(1) }));

function result(r, onSimilar) {
  const caption = r.caption ?? '';
  const img = el('img', { alt: caption || `Image from ${r.source}`, width: 128, height: 128 });
  const scores = el('dl', { class: 'scores' }, el('dt', { text: 'ITC' }), score('itc', r.itcScore));
  if (r.itmScore !== undefined) scores.append(el('dt', { text: 'ITM' }), score('itm', r.itmScore));
  if (r.lmScore !== undefined) scores.append(el('dt', { text: 'LM' }), score('lm', r.lmScore));
  imageUrl(r.thumbnailUrl, running?.signal)
    .then((url) => {
      thumbnails.push(url);
      img.src = url;
    })
    .catch(() => img.classList.add('missing'));
  return el(
    'li',
    { class: 'result', 'data-id': r.id },
    el('figure', {}, img, el('figcaption', {}, el('span', { class: 'caption', text: caption || 'no caption yet' }), scores)),
    el('button', { type: 'button', class: 'similar', 'aria-label': `Similar to: ${caption || r.source}`, onclick: () => onSimilar(r), text: 'Similar' }),
  );
}

function render(response, what) {
  for (const url of thumbnails) URL.revokeObjectURL(url);
  thumbnails = [];
  const items = response.results.map((r) => result(r, (hit) => search({ imageId: hit.id }, `images like “${hit.caption ?? hit.source}”`)));
  $('results').replaceChildren(...items);
  const how = response.reranked ? `ITC, re-ranked with ${response.rerankRule === 'itm+lm' ? 'ITM + LM' : 'ITM'}` : 'ITC';
  $('search-status').textContent = `${items.length} results for ${what} by ${how} in ${Math.round(response.tookMs)} ms.`;
}

/** Runs a query ({text}, {imageId} or {file}); a newer query cancels the one in flight. */
export async function search(query, what) {
  const collection = selected();
  if (!collection) return showError(new Error('Collection: there is none to search yet.'));
  let body;
  try {
    body = params(collection);
  } catch (err) {
    return showError(err);
  }
  running?.abort();
  const mine = (running = new AbortController());
  last = { query, what };
  showError();
  $('search-status').textContent = `Searching ${what}…`;
  $('results').setAttribute('aria-busy', 'true');
  try {
    let response;
    if (query.file) {
      const form = new FormData();
      form.set('file', query.file);
      form.set('params', JSON.stringify(body));
      response = await api('/v1/search/upload', { method: 'POST', form, signal: mine.signal });
    } else response = await api('/v1/search', { method: 'POST', json: { ...body, ...query }, signal: mine.signal });
    render(response, what);
  } catch (err) {
    if (err.name === 'AbortError') return;
    $('search-status').textContent = '';
    showError(err);
  } finally {
    if (running === mine) $('results').removeAttribute('aria-busy');
  }
}

/** Re-rank is offered only where the collection has a reranker. */
function syncRerank() {
  const collection = selected();
  const can = Boolean(collection?.reranker);
  $('rerank').disabled = !can;
  $('rerank').title = can ? '' : 'This collection has no reranker';
  $('candidates').disabled = !can || !$('rerank').checked;
}

export function initSearch(getCollection) {
  selected = getCollection;
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('query').value.trim();
    if (!text) return showError(new Error('Text: type what to look for.'));
    search({ text }, `“${text}”`);
  });
  $('rerank').addEventListener('change', () => {
    syncRerank();
    if (last) search(last.query, last.what);
  });
  $('collection').addEventListener('change', () => {
    syncRerank();
    last = undefined;
    $('results').replaceChildren();
    $('search-status').textContent = '';
  });
  return { syncRerank };
}
