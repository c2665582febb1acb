import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiraClient, type SearchResponse } from '../../sdk/src/index.ts';
import { createKey } from '../../src/api/keys.ts';
import { DEFAULT_MODEL_DIR, ROOT } from '../../src/config.ts';
import { createJob, updateJob } from '../../src/db/queries/jobs.ts';
import { renderScene, sampleScenes } from '../../src/scenes/index.ts';
import { startServer } from '../../src/server.ts';
import { unique, useServer } from '../api/server.ts';
import { chromiumRequired, hasChromium, launchChromium, noChromiumReason } from './browser.ts';

const N = 30;
const K = 12;
const SCREENSHOT = join(ROOT, 'test/artifacts/ui-search.png');
/** Generous: a loaded 2-core machine runs inference, the server and Chromium at once. */
const WAIT_MS = 60_000;
/** The jobs panel's poll interval (src/web/jobs.js). */
const JOBS_POLL_MS = 2000;

if (!hasChromium && chromiumRequired) {
  describe('web UI in Chromium', () => {
    it('needs Chromium, which CI installs (.ci/run)', () => {
      throw new Error(`the browser tests cannot run: ${noChromiumReason}`);
    });
  });
} else if (!hasChromium) console.warn(`web UI browser tests skipped: ${noChromiumReason}`);

describe.skipIf(!hasChromium)(`web UI in Chromium${hasChromium ? '' : ` (skipped: ${noChromiumReason})`}`, { timeout: 3 * WAIT_MS }, () => {
  const server = useServer({ MIRA_MODEL_DIR: DEFAULT_MODEL_DIR });
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let key: string;
  let collection: { id: string; name: string };
  let scenes: { id: string; bytes: Buffer; half: string }[];
  let jobId: string;
  const problems: string[] = [];

  beforeAll(async () => {
    const { admin, ctx, db } = server();
    const model = ctx.defaultModel.id;
    collection = await MiraClient.data(admin.api.POST('/v1/collections', { body: { name: unique('ui'), embedder: model, reranker: model, captioner: model } }));
    const records = sampleScenes(1001, N);
    scenes = [];
    for (const [i, r] of records.entries()) {
      const bytes = await renderScene(r.scene, { size: 64, layout: r.layout });
      const half = i < N / 2 ? 'first' : 'second';
      const { image } = await admin.uploadImage(collection.id, bytes, { filename: r.file, metadata: { half } });
      scenes.push({ id: image.id, bytes, half });
    }
    for (const s of scenes) {
      const image = await admin.waitForImage(s.id, { timeoutMs: WAIT_MS });
      expect(image.status, `an image that failed says why: ${JSON.stringify(image)}`).toBe('ready');
    }
    // A job row as a running extraction would leave it, for the jobs panel.
    jobId = unique('ui-extract');
    await createJob(db, { id: jobId, kind: 'extract', collectionId: collection.id, payload: {} });
    await updateJob(db, jobId, { state: 'running', progress: { done: 3, total: 10 } });
    ({ key } = await createKey(db, { name: unique('ui-key'), scopes: ['read'], collections: [collection.id] }));

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(WAIT_MS);
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (m) => {
      // 401 before the key is given is expected; anything else (CSP violations included) is not.
      if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    const { admin, db } = server();
    if (jobId) await updateJob(db, jobId, { state: 'cancelled' });
    if (collection) await admin.api.DELETE('/v1/collections/{id}', { params: { path: { id: collection.id } } });
  });

  const results = () => page.locator('#results .result');
  const searchResponse = () => page.waitForResponse((r: Response) => new URL(r.url()).pathname.startsWith('/v1/search') && r.request().method() === 'POST');
  const shownIds = () => results().evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
  /** The shown results, once every thumbnail has loaded. */
  async function shown() {
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll<HTMLImageElement>('#results .result img')];
      return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0) && !document.getElementById('results')!.hasAttribute('aria-busy');
    });
    return results().evaluateAll((els) =>
      els.map((e) => ({
        id: e.getAttribute('data-id'),
        alt: e.querySelector('img')!.alt,
        itc: Number(e.querySelector('.itc data')!.getAttribute('value')),
        itm: e.querySelector('.itm data') ? Number(e.querySelector('.itm data')!.getAttribute('value')) : null,
        text: e.querySelector('.scores')!.textContent,
      })),
    );
  }
  /** What the page must show for an API answer: its order, captions as alt text, its scores. */
  const expected = (body: SearchResponse) =>
    body.results.map((r) => ({ id: r.id, alt: r.caption!, itc: r.itcScore, itm: r.itmScore ?? null, text: expect.stringMatching(r.itmScore === undefined ? /^ITC-?\d/ : /^ITC-?\d.*ITM\d/) }));

  it('asks for an API key, then lists the collections the key may use', async () => {
    await page.goto(server().url);
    await page.getByRole('alert').filter({ hasText: /API key/ }).waitFor();
    expect(await page.locator('#key-panel').getAttribute('open')).not.toBeNull();
    await page.getByLabel('API key').fill(key);
    // The collections answer comes late (a loaded server), after a jobs poll has already listed the
    // job: the panel must still name its collection (checked by the jobs panel test below).
    await page.route('**/v1/collections', async (route) => {
      await new Promise((r) => setTimeout(r, 2 * JOBS_POLL_MS));
      await route.continue();
    });
    await page.getByLabel('API key').press('Enter');
    await page.locator('#collection option', { hasText: collection.name }).waitFor({ state: 'attached' });
    await page.unroute('**/v1/collections');
    expect(await page.locator('#collection').inputValue()).toBe(collection.id);
    expect(await page.getByRole('alert').isHidden()).toBe(true);
  });

  it('a typed query shows thumbnails with ITC scores and captions as alt text', async () => {
    await page.getByLabel('Text').fill('a small purple star');
    const [res] = await Promise.all([searchResponse(), page.getByLabel('Text').press('Enter')]);
    const body = (await res.json()) as SearchResponse;
    expect(body.reranked).toBe(false);
    expect(body.results).toHaveLength(K);
    const items = await shown();
    expect(items).toEqual(expected(body));
    expect(items.every((i) => i.alt.length > 0 && i.itm === null)).toBe(true);
    expect(await page.locator('#search-status').textContent()).toMatch(new RegExp(`^${K} results for .a small purple star. by ITC in \\d+ ms\\.$`));
  });

  it('turning re-rank on runs the query again and shows ITM scores', async () => {
    const [res] = await Promise.all([searchResponse(), page.getByLabel('Re-rank with ITM').check()]);
    const body = (await res.json()) as SearchResponse;
    expect(JSON.parse(res.request().postData()!)).toMatchObject({ rerank: { enabled: true, candidates: 16 } });
    expect(body.reranked).toBe(true);
    const items = await shown();
    expect(items).toEqual(expected(body));
    expect(items.every((i) => i.itm !== null)).toBe(true);
    expect(await page.locator('#search-status').textContent()).toMatch(/by ITC, re-ranked with ITM/);
    await mkdir(join(ROOT, 'test/artifacts'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const png = await readFile(SCREENSHOT);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  it('a metadata filter keeps the results to matching images', async () => {
    await page.getByLabel('Metadata filter').fill('{"half": "second"}');
    const [res] = await Promise.all([searchResponse(), page.getByLabel('Text').press('Enter')]);
    expect(res.status()).toBe(200);
    await shown();
    const second = new Set(scenes.filter((s) => s.half === 'second').map((s) => s.id));
    const ids = await shownIds();
    expect(ids.length).toBe(K);
    expect(ids.filter((id) => !second.has(id!)), 'results outside the filter').toEqual([]);

    await page.getByLabel('Metadata filter').fill('{"half": ');
    await page.getByLabel('Text').press('Enter');
    await page.getByRole('alert').filter({ hasText: 'Metadata filter: this is not JSON.' }).waitFor();
    await page.getByLabel('Metadata filter').fill('');
  });

  it('an uploaded image gets a caption (beam search) and finds itself first among similar images', async () => {
    const { admin } = server();
    const scene = scenes[2]!;
    await page.getByLabel('Image file').setInputFiles({ name: 'query.png', mimeType: 'image/png', buffer: scene.bytes });
    await page.getByLabel('Caption by').selectOption('beam');
    await page.getByRole('button', { name: 'Caption' }).click();
    await page.locator('#caption-out', { hasText: /^Caption: / }).waitFor();
    const want = await admin.caption(scene.bytes, { method: 'beam', model: server().ctx.defaultModel.id });
    expect(await page.locator('#caption-out').textContent()).toBe(`Caption: ${want.caption}`);
    expect(await page.locator('#image-preview').getAttribute('alt')).toBe(want.caption);

    const [res] = await Promise.all([searchResponse(), page.getByRole('button', { name: 'Find similar' }).click()]);
    expect(new URL(res.url()).pathname).toBe('/v1/search/upload');
    await shown();
    expect((await shownIds())[0]).toBe(scene.id);
    expect(await page.locator('#search-status').textContent()).toMatch(/for the image query\.png by ITC in/);
  });

  it('classifies the uploaded image over typed labels, best first', async () => {
    const labels = ['a small purple star', 'a large green hexagon', 'a small red star'];
    await page.getByLabel('Labels').fill(labels.join(', '));
    await page.getByRole('button', { name: 'Classify' }).click();
    await page.locator('#classes:not([hidden]) tbody tr').nth(2).waitFor();
    const rows = await page.locator('#classes tbody tr').evaluateAll((trs) => trs.map((tr) => ({ label: tr.querySelector('th')!.textContent!, pct: Number.parseFloat(tr.querySelector('td')!.textContent!) })));
    expect(rows.map((r) => r.label).sort()).toEqual([...labels].sort());
    const pcts = rows.map((r) => r.pct);
    expect([...pcts].sort((a, b) => b - a)).toEqual(pcts);
    expect(pcts.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 0);
  });

  it('the jobs panel shows a running job with its progress', async () => {
    const bar = page.getByRole('progressbar', { name: `extract in ${collection.name}: 3 of 10` });
    await bar.waitFor();
    expect(await bar.evaluate((p: HTMLProgressElement) => [p.value, p.max])).toEqual([3, 10]);
    // Its state is not checked: a reconciler may call a job without a queue entry lost meanwhile.
    expect(await page.locator(`#jobs li[data-id="${jobId}"] .count`).textContent()).toBe('3 / 10');
  });

  it('works from the keyboard: Tab reaches the search box and the re-rank toggle, Space toggles it', async () => {
    await page.reload();
    await page.locator('#collection option', { hasText: collection.name }).waitFor({ state: 'attached' });
    await page.waitForFunction(() => !(document.getElementById('rerank') as HTMLInputElement).disabled);
    const reached = new Set<string>();
    for (let i = 0; i < 40 && !(reached.has('query') && reached.has('rerank')); i++) {
      await page.keyboard.press('Tab');
      const id = await page.evaluate(() => document.activeElement?.id ?? '');
      if (id === 'query') expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).not.toBe('none');
      if (id) reached.add(id);
      if (id === 'rerank') break;
    }
    expect([...reached]).toEqual(expect.arrayContaining(['query', 'rerank']));
    const before = await page.locator('#rerank').isChecked();
    await page.keyboard.press('Space');
    expect(await page.locator('#rerank').isChecked()).toBe(!before);
  });

  it.skipIf(server.mode === 'service')('with auth off (embedded, loopback), the page searches without a key', async () => {
    const { ctx } = server();
    const open = await startServer({ ...ctx, env: { ...ctx.env, MIRA_AUTH: 'off' } }, { host: '127.0.0.1', port: 0 });
    const fresh = await browser.newContext();
    try {
      fresh.setDefaultTimeout(WAIT_MS);
      const p = await fresh.newPage();
      await p.goto(open.url);
      await p.locator('#collection option', { hasText: collection.name }).waitFor({ state: 'attached' });
      await p.locator('#collection').selectOption(collection.id);
      await p.getByLabel('Text').fill('a large blue circle');
      const [res] = await Promise.all([p.waitForResponse((r: Response) => new URL(r.url()).pathname === '/v1/search'), p.getByLabel('Text').press('Enter')]);
      expect(res.status(), await res.text()).toBe(200);
      await p.locator('#results .result').nth(K - 1).waitFor();
      expect(await p.getByRole('alert').isHidden()).toBe(true);
    } finally {
      await fresh.close();
      await open.close();
    }
  });

  it('logged no script errors and no CSP violations', () => {
    expect(problems).toEqual([]);
  });
});
