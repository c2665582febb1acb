/**
 * Caption templates, the closed caption vocabulary, and the exact inverse parser.
 *
 * Templates are data: the same part lists drive generation (captionScene / captionVariants) and
 * parsing (parseCaption), so every caption any template can produce parses back to a scene with
 * the same sceneKey. Captions are lowercase words separated by single spaces, no punctuation.
 * Every object is always named with all three attributes: "<size> <color> <shape>".
 */
import type { Rng } from './rng.ts';
import {
  COLORS,
  OPPOSITE,
  RELATIONS,
  SHAPES,
  SIZES,
  describeObject,
  type Color,
  type Relation,
  type Scene,
  type SceneObject,
  type SceneRelation,
  type Shape,
  type Size,
} from './scene.ts';

/** A = objects[0], B = objects[1] (the anchor), C = objects[2]. */
type Ref = 'A' | 'B' | 'C';
const REF_INDEX: Record<Ref, number> = { A: 0, B: 1, C: 2 };

/**
 * - string: literal words;
 * - obj: the object's "<size> <color> <shape>";
 * - rel [X, Y]: phrase for "X is <rel> Y" ("to the left of", "above", ...);
 * - pos [X, Y]: phrase after "Y with a X ..." ("on its left", "above it", ...).
 */
type Part = string | { obj: Ref } | { rel: [Ref, Ref] } | { pos: [Ref, Ref] };

export interface CaptionTemplate {
  id: string;
  objects: 1 | 2 | 3;
  parts: readonly Part[];
}

/** Phrasings of "X is <rel> Y", used between X and Y. First entry is the primary phrasing. */
export const REL_PHRASES: Readonly<Record<Relation, readonly string[]>> = {
  left: ['to the left of', 'left of'],
  right: ['to the right of', 'right of'],
  above: ['above'],
  below: ['below', 'under'],
};

/** Phrasings of X's place in "a Y with a X <pos>". */
export const POS_PHRASES: Readonly<Record<Relation, readonly string[]>> = {
  left: ['on its left'],
  right: ['on its right'],
  above: ['above it'],
  below: ['below it', 'under it'],
};

const A = { obj: 'A' } as const;
const B = { obj: 'B' } as const;
const C = { obj: 'C' } as const;
const rel = (x: Ref, y: Ref): Part => ({ rel: [x, y] });
const pos = (x: Ref, y: Ref): Part => ({ pos: [x, y] });

export const TEMPLATES: readonly CaptionTemplate[] = [
  { id: 'o1-plain', objects: 1, parts: ['a', A] },
  { id: 'o1-single', objects: 1, parts: ['a single', A] },
  { id: 'o1-there', objects: 1, parts: ['there is a', A] },
  { id: 'o1-picture', objects: 1, parts: ['a picture of a', A] },

  // a small red circle to the left of a large blue square
  { id: 'o2-rel', objects: 2, parts: ['a', A, rel('A', 'B'), 'a', B] },
  // a large blue square to the right of a small red circle
  { id: 'o2-inverse', objects: 2, parts: ['a', B, rel('B', 'A'), 'a', A] },
  // a large blue square with a small red circle on its left
  { id: 'o2-with', objects: 2, parts: ['a', B, 'with a', A, pos('A', 'B')] },
  // there is a small red circle to the left of a large blue square
  { id: 'o2-there', objects: 2, parts: ['there is a', A, rel('A', 'B'), 'a', B] },

  // a small red circle to the left of a large blue square and a small green star above it
  { id: 'o3-rel', objects: 3, parts: ['a', A, rel('A', 'B'), 'a', B, 'and a', C, rel('C', 'B'), 'it'] },
  // a small green star above a large blue square and a small red circle to the left of it
  { id: 'o3-rel-swapped', objects: 3, parts: ['a', C, rel('C', 'B'), 'a', B, 'and a', A, rel('A', 'B'), 'it'] },
  // a large blue square with a small red circle on its left and a small green star above it
  { id: 'o3-with', objects: 3, parts: ['a', B, 'with a', A, pos('A', 'B'), 'and a', C, pos('C', 'B')] },
  // a large blue square to the right of a small red circle and below a small green star
  { id: 'o3-inverse', objects: 3, parts: ['a', B, rel('B', 'A'), 'a', A, 'and', rel('B', 'C'), 'a', C] },
];

export function templatesFor(objectCount: number): CaptionTemplate[] {
  return TEMPLATES.filter((t) => t.objects === objectCount);
}

/** Relation of objects[x] relative to objects[y], from the scene's facts (either direction). */
function relationBetween(scene: Scene, x: number, y: number): Relation {
  for (const r of scene.relations) {
    if (r.subject === x && r.object === y) return r.relation;
    if (r.subject === y && r.object === x) return OPPOSITE[r.relation];
  }
  throw new Error(`scene has no relation between objects ${x} and ${y}`);
}

function objectAt(scene: Scene, ref: Ref): SceneObject {
  const o = scene.objects[REF_INDEX[ref]];
  if (!o) throw new Error(`scene has no object ${ref}`);
  return o;
}

/** Renders one template; `choose(n)` picks which of n phrasings to use for each phrase slot. */
export function renderTemplate(template: CaptionTemplate, scene: Scene, choose: (n: number) => number = () => 0): string {
  if (scene.objects.length !== template.objects) {
    throw new Error(`template ${template.id} needs ${template.objects} objects, scene has ${scene.objects.length}`);
  }
  const words: string[] = [];
  for (const part of template.parts) {
    if (typeof part === 'string') words.push(part);
    else if ('obj' in part) words.push(describeObject(objectAt(scene, part.obj)));
    else {
      const [x, y] = 'rel' in part ? part.rel : part.pos;
      const phrases = ('rel' in part ? REL_PHRASES : POS_PHRASES)[relationBetween(scene, REF_INDEX[x], REF_INDEX[y])];
      words.push(phrases[choose(phrases.length)] as string);
    }
  }
  return words.join(' ');
}

/** Every caption any template can produce for this scene (all templates, all phrasings). */
export function captionVariants(scene: Scene): Array<{ template: string; text: string }> {
  const out: Array<{ template: string; text: string }> = [];
  for (const t of templatesFor(scene.objects.length)) {
    const slots = t.parts.filter((p) => typeof p !== 'string' && !('obj' in p)).length;
    // Enumerate phrasing choices as a mixed-radix counter (at most 2 slots x 2 phrasings).
    const seen = new Set<string>();
    for (let code = 0; code < 2 ** (2 * slots); code++) {
      let c = code;
      const text = renderTemplate(t, scene, (n) => {
        const k = c % 4;
        c = Math.floor(c / 4);
        return k % n;
      });
      if (!seen.has(text)) {
        seen.add(text);
        out.push({ template: t.id, text });
      }
    }
  }
  return out;
}

/** 1–3 captions (`count`, default random) from distinct templates with random phrasings. */
export function captionScene(scene: Scene, rng: Rng, count?: number): string[] {
  const templates = rng.shuffle(templatesFor(scene.objects.length));
  const k = Math.min(templates.length, count ?? 1 + rng.int(3));
  return templates.slice(0, k).map((t) => renderTemplate(t, scene, (n) => rng.int(n)));
}

/** Every word any template can produce, sorted; the trainer's word-level tokenizer is built from this. */
export function captionVocabulary(): string[] {
  const words = new Set<string>([...SIZES, ...COLORS, ...SHAPES]);
  const add = (text: string) => text.split(' ').forEach((w) => words.add(w));
  for (const t of TEMPLATES) for (const p of t.parts) if (typeof p === 'string') add(p);
  for (const r of RELATIONS) [...REL_PHRASES[r], ...POS_PHRASES[r]].forEach(add);
  return [...words].sort();
}

/**
 * Parses a caption of any template back into a canonical scene, or returns null.
 * Lenient about case, surrounding/multiple whitespace and one trailing period (generated captions
 * are scored with it); any other character or an ungrammatical word sequence gives null.
 * The grammar is enforced, the dataset's distribution constraints are not: "a small red circle
 * left of a large red circle" parses (and simply scores as a different scene).
 */
export function parseCaption(text: string): Scene | null {
  const normalised = text.toLowerCase().trim().replace(/\.$/, '').trim();
  if (!/^[a-z]+( +[a-z]+)*$/.test(normalised)) return null;
  const tokens = normalised.split(/ +/);
  for (const t of TEMPLATES) {
    const scene = matchTemplate(t, tokens);
    if (scene) return scene;
  }
  return null;
}

interface Bindings {
  objects: Partial<Record<Ref, SceneObject>>;
  facts: Array<{ x: Ref; relation: Relation; y: Ref }>;
}

function matchTemplate(t: CaptionTemplate, tokens: string[]): Scene | null {
  const result = matchParts(t.parts, 0, tokens, 0, { objects: {}, facts: [] });
  if (!result) return null;
  const refs = (['A', 'B', 'C'] as const).slice(0, t.objects);
  const objects: SceneObject[] = [];
  for (const r of refs) {
    const o = result.objects[r];
    if (!o) return null;
    objects.push(o);
  }
  const relations: SceneRelation[] = [];
  const satellites = t.objects === 1 ? [] : refs.filter((r) => r !== 'B');
  for (const sat of satellites) {
    const f = result.facts.find((f) => (f.x === sat && f.y === 'B') || (f.x === 'B' && f.y === sat));
    if (!f) return null;
    relations.push({ subject: REF_INDEX[sat], relation: f.x === sat ? f.relation : OPPOSITE[f.relation], object: 1 });
  }
  return { objects, relations };
}

function matchWords(tokens: string[], at: number, phrase: string): number {
  const words = phrase.split(' ');
  for (let i = 0; i < words.length; i++) if (tokens[at + i] !== words[i]) return -1;
  return at + words.length;
}

/** Backtracking matcher over template parts; returns bindings when all tokens are consumed. */
function matchParts(parts: readonly Part[], pi: number, tokens: string[], ti: number, b: Bindings): Bindings | null {
  if (pi === parts.length) return ti === tokens.length ? b : null;
  const part = parts[pi] as Part;
  if (typeof part === 'string') {
    const next = matchWords(tokens, ti, part);
    return next < 0 ? null : matchParts(parts, pi + 1, tokens, next, b);
  }
  if ('obj' in part) {
    const [size, color, shape] = [tokens[ti], tokens[ti + 1], tokens[ti + 2]];
    if (!SIZES.includes(size as Size) || !COLORS.includes(color as Color) || !SHAPES.includes(shape as Shape)) return null;
    const o: SceneObject = { size: size as Size, color: color as Color, shape: shape as Shape };
    const prev = b.objects[part.obj];
    if (prev && describeObject(prev) !== describeObject(o)) return null;
    return matchParts(parts, pi + 1, tokens, ti + 3, { ...b, objects: { ...b.objects, [part.obj]: o } });
  }
  const [x, y] = 'rel' in part ? part.rel : part.pos;
  const table = 'rel' in part ? REL_PHRASES : POS_PHRASES;
  for (const relation of RELATIONS) {
    for (const phrase of table[relation]) {
      const next = matchWords(tokens, ti, phrase);
      if (next < 0) continue;
      const found = matchParts(parts, pi + 1, tokens, next, { ...b, facts: [...b.facts, { x, relation, y }] });
      if (found) return found;
    }
  }
  return null;
}
