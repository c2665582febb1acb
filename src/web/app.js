// Mira's web UI: wires the API key, the collection picker, search, the image tools and jobs.
import { api, apiKey, el, setApiKey, showError } from './api.js';
import { initImage } from './image.js';
import { initJobs } from './jobs.js';
import { initSearch } from './search.js';

const $ = (id) => document.getElementById(id);
const PICKED = 'mira.collection';

let collections = [];
const current = () => collections.find((c) => c.id === $('collection').value);

const search = initSearch(current);
initImage(current);
const jobs = initJobs((id) => collections.find((c) => c.id === id)?.name);

async function loadCollections() {
  try {
    ({ items: collections } = await api('/v1/collections'));
    showError();
  } catch (err) {
    collections = [];
    showError(err);
  }
  const keep = localStorage.getItem(PICKED);
  const options = collections.map((c) => el('option', { value: c.id, text: `${c.name}${c.reranker ? '' : ' (no re-ranking)'}` }));
  $('collection').replaceChildren(...options);
  if (collections.some((c) => c.id === keep)) $('collection').value = keep;
  search.syncRerank();
}

$('collection').addEventListener('change', () => localStorage.setItem(PICKED, $('collection').value));

$('api-key').value = apiKey();
$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setApiKey($('api-key').value.trim());
  loadCollections().then(jobs.refresh);
});
$('key-clear').addEventListener('click', () => {
  $('api-key').value = '';
  setApiKey('');
  loadCollections().then(jobs.refresh);
});

loadCollections();
