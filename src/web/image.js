// One image from this computer: find similar ones, caption it, classify it over typed labels.
import { api, el, showError } from './api.js';
import { search } from './search.js';

const $ = (id) => document.getElementById(id);

let preview; // object URL of the chosen file
let selected = () => undefined;

function chosen() {
  const file = $('image-file').files?.[0];
  if (!file) throw new Error('Image file: choose an image first.');
  return file;
}

/** Runs an action on the chosen file with its button busy; errors go to the alert line. */
function action(button, run) {
  $(button).addEventListener('click', async () => {
    const b = $(button);
    if (b.getAttribute('aria-disabled') === 'true') return;
    b.setAttribute('aria-disabled', 'true');
    showError();
    try {
      await run(chosen());
    } catch (err) {
      showError(err);
    } finally {
      b.removeAttribute('aria-disabled');
    }
  });
}

function labels() {
  const list = $('labels')
    .value.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length < 2) throw new Error('Labels: give at least two, separated by commas.');
  return list;
}

/** Captions by the collection's captioner and classifies by its embedder (else the active model). */
export function initImage(getCollection) {
  selected = getCollection;
  $('image-file').addEventListener('change', () => {
    if (preview) URL.revokeObjectURL(preview);
    const file = $('image-file').files?.[0];
    preview = file ? URL.createObjectURL(file) : undefined;
    $('image-preview').hidden = !file;
    $('image-preview').alt = file ? `The chosen image, ${file.name}` : '';
    if (preview) $('image-preview').src = preview;
    $('caption-out').textContent = '';
    $('classes').hidden = true;
  });

  action('similar', (file) => search({ file }, `the image ${file.name}`));

  action('caption', async (file) => {
    const form = new FormData();
    form.set('file', file);
    form.set('method', $('caption-method').value);
    const captioner = selected()?.captioner;
    if (captioner) form.set('model', captioner);
    $('caption-out').textContent = 'Captioning…';
    try {
      const { caption } = await api('/v1/captions', { method: 'POST', form });
      $('caption-out').textContent = `Caption: ${caption}`;
      $('image-preview').alt = caption;
    } catch (err) {
      $('caption-out').textContent = '';
      throw err;
    }
  });

  action('classify', async (file) => {
    const form = new FormData();
    form.set('file', file);
    form.set('labels', JSON.stringify(labels()));
    const embedder = selected()?.embedder;
    if (embedder) form.set('model', embedder);
    const { labels: scored } = await api('/v1/classify', { method: 'POST', form });
    const rows = scored.map(({ label, score }) =>
      el('tr', {}, el('th', { scope: 'row', text: label }), el('td', {}, el('meter', { min: 0, max: 1, value: score, 'aria-hidden': 'true' }), ` ${(score * 100).toFixed(1)}%`)),
    );
    $('classes').tBodies[0].replaceChildren(...rows);
    $('classes').hidden = false;
  });
}
