// The jobs panel: the newest jobs with their progress, polled every 2 s while the page is visible.
import { api, el } from './api.js';

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

let collectionName = () => undefined;
let shown = '';
let busy = false; // a slow answer is not overtaken by the next poll

function job(j) {
  const { done, total } = j.progress;
  const name = j.collectionId ? (collectionName(j.collectionId) ?? j.collectionId) : undefined;
  const label = `${j.kind}${name ? ` in ${name}` : ''}`;
  const bar = total > 0 ? el('progress', { max: total, value: Math.min(done, total), 'aria-label': `${label}: ${done} of ${total}` }) : undefined;
  return el(
    'li',
    { class: `job ${j.state}`, 'data-id': j.id },
    el('span', { class: 'what', text: label }),
    el('span', { class: 'state', text: j.state }),
    bar,
    el('span', { class: 'count', text: total > 0 ? `${done} / ${total}` : '' }),
    j.error ? el('span', { class: 'error', text: j.error }) : undefined,
  );
}

async function poll() {
  if (document.hidden || busy) return;
  busy = true;
  try {
    const { items } = await api('/v1/jobs?limit=20');
    // The names are part of what is shown: a poll answered before the collections were listed
    // showed ids, and the next must show names even though the jobs themselves did not change.
    const seen = JSON.stringify([items, items.map((j) => j.collectionId && collectionName(j.collectionId))]);
    if (seen !== shown) {
      shown = seen;
      $('jobs').replaceChildren(...items.map(job));
    }
    $('jobs-status').textContent = items.length ? '' : 'No jobs yet.';
  } catch (err) {
    shown = '';
    $('jobs').replaceChildren();
    $('jobs-status').textContent = `Jobs cannot be listed: ${err.message}`;
  } finally {
    busy = false;
  }
}

export function initJobs(nameOf) {
  collectionName = nameOf;
  poll();
  setInterval(poll, POLL_MS);
  document.addEventListener('visibilitychange', poll);
  return { refresh: poll };
}
