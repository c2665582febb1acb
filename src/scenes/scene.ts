/**
 * Scene model of the captioned-scenes dataset: types, closed attribute sets, sampling,
 * the canonical key, and the one-swap edits used to build contrast groups.
 *
 * Canonical structure (what the generator emits and what parseCaption returns):
 *   1 object : objects = [A],       relations = []
 *   2 objects: objects = [A, B],    relations = [A rel B]                 (B is the anchor)
 *   3 objects: objects = [A, B, C], relations = [A rel1 B, C rel2 B]      (B is the anchor, rel1 != rel2)
 * A relation {subject, relation, object} reads "objects[subject] is <relation> objects[object]",
 * e.g. {subject: 0, relation: 'left', object: 1} = "A is to the left of B".
 * Within one scene the (color, shape) pairs are pairwise distinct, so every object can be named
 * unambiguously by its words.
 */
import { Rng } from './rng.ts';

export const SHAPES = ['circle', 'square', 'triangle', 'star', 'diamond', 'hexagon'] as const;
export const COLORS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'white', 'black'] as const;
export const SIZES = ['small', 'large'] as const;
export const RELATIONS = ['left', 'right', 'above', 'below'] as const;

export type Shape = (typeof SHAPES)[number];
export type Color = (typeof COLORS)[number];
export type Size = (typeof SIZES)[number];
export type Relation = (typeof RELATIONS)[number];

export interface SceneObject {
  size: Size;
  color: Color;
  shape: Shape;
}

export interface SceneRelation {
  subject: number;
  relation: Relation;
  object: number;
}

export interface Scene {
  objects: SceneObject[];
  relations: SceneRelation[];
}

export const OPPOSITE: Readonly<Record<Relation, Relation>> = {
  left: 'right',
  right: 'left',
  above: 'below',
  below: 'above',
};

/** "small red circle". */
export function describeObject(o: SceneObject): string {
  return `${o.size} ${o.color} ${o.shape}`;
}

/**
 * Canonical string for the content of a scene, independent of how it is described:
 * "A left of B" and "B right of A" give the same key, as do the two orders of the satellites of a
 * three-object scene. Every relation is normalised to `left` or `above` (flipping subject and
 * object for `right`/`below`), objects and facts are sorted.
 * Example: "large blue square+small red circle|small red circle <left> large blue square".
 */
export function sceneKey(scene: Scene): string {
  const names = scene.objects.map(describeObject);
  const facts = scene.relations.map((r) => {
    const s = names[r.subject] ?? '?';
    const o = names[r.object] ?? '?';
    if (r.relation === 'right') return `${o} <left> ${s}`;
    if (r.relation === 'below') return `${o} <above> ${s}`;
    return `${s} <${r.relation}> ${o}`;
  });
  return `${[...names].sort().join('+')}|${facts.sort().join(';')}`;
}

/** Returns a description of what makes `scene` non-canonical, or null when it is canonical. */
export function validateScene(scene: Scene): string | null {
  const n = scene.objects.length;
  if (n < 1 || n > 3) return `expected 1 to 3 objects, got ${n}`;
  for (const o of scene.objects) {
    if (!SIZES.includes(o.size) || !COLORS.includes(o.color) || !SHAPES.includes(o.shape)) {
      return `unknown attribute in ${JSON.stringify(o)}`;
    }
  }
  const pairs = new Set(scene.objects.map((o) => `${o.color} ${o.shape}`));
  if (pairs.size !== n) return 'two objects share color and shape';
  if (scene.relations.length !== n - 1) return `expected ${n - 1} relations, got ${scene.relations.length}`;
  const satellites = n === 3 ? [0, 2] : n === 2 ? [0] : [];
  for (let i = 0; i < satellites.length; i++) {
    const r = scene.relations[i];
    if (!r || r.subject !== satellites[i] || r.object !== 1 || !RELATIONS.includes(r.relation)) {
      return `relation ${i} is not canonical: ${JSON.stringify(r)}`;
    }
  }
  if (n === 3 && scene.relations[0]?.relation === scene.relations[1]?.relation) {
    return 'both satellites have the same relation to the anchor';
  }
  return null;
}

export function cloneScene(scene: Scene): Scene {
  return {
    objects: scene.objects.map((o) => ({ ...o })),
    relations: scene.relations.map((r) => ({ ...r })),
  };
}

/** Default mix of object counts (1, 2, 3): multi-object scenes carry the relations we want learned. */
export const OBJECT_COUNT_WEIGHTS = [0.2, 0.4, 0.4] as const;

/** Samples a canonical scene with `count` objects (or a count drawn from OBJECT_COUNT_WEIGHTS). */
export function sampleScene(rng: Rng, count?: 1 | 2 | 3): Scene {
  const n = count ?? ((rng.weighted(OBJECT_COUNT_WEIGHTS) + 1) as 1 | 2 | 3);
  const objects: SceneObject[] = [];
  const used = new Set<string>();
  while (objects.length < n) {
    const o: SceneObject = { size: rng.pick(SIZES), color: rng.pick(COLORS), shape: rng.pick(SHAPES) };
    const id = `${o.color} ${o.shape}`;
    if (used.has(id)) continue;
    used.add(id);
    objects.push(o);
  }
  const relations: SceneRelation[] = [];
  if (n >= 2) relations.push({ subject: 0, relation: rng.pick(RELATIONS), object: 1 });
  if (n === 3) {
    const first = relations[0]?.relation;
    relations.push({ subject: 2, relation: rng.pick(RELATIONS.filter((r) => r !== first)), object: 1 });
  }
  return { objects, relations };
}

export type SwapKind = 'color' | 'size' | 'relation';
export const SWAP_KINDS: readonly SwapKind[] = ['color', 'size', 'relation'];

export interface SwapResult {
  kind: SwapKind;
  scene: Scene;
}

/**
 * Every scene reachable from `scene` by exactly one swap that keeps it canonical and changes its key:
 *  - color: exchange the colors of two objects with different colors;
 *  - size: exchange the sizes of a small and a large object;
 *  - relation: replace one relation by its opposite (left <-> right, above <-> below), or, in a
 *    three-object scene, exchange the relations of the two satellites.
 */
export function oneSwapNeighbours(scene: Scene): SwapResult[] {
  const out: SwapResult[] = [];
  const key = sceneKey(scene);
  const push = (kind: SwapKind, next: Scene) => {
    if (validateScene(next) === null && sceneKey(next) !== key) out.push({ kind, scene: next });
  };
  const n = scene.objects.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = scene.objects[i] as SceneObject;
      const b = scene.objects[j] as SceneObject;
      if (a.color !== b.color) {
        const next = cloneScene(scene);
        (next.objects[i] as SceneObject).color = b.color;
        (next.objects[j] as SceneObject).color = a.color;
        push('color', next);
      }
      if (a.size !== b.size) {
        const next = cloneScene(scene);
        (next.objects[i] as SceneObject).size = b.size;
        (next.objects[j] as SceneObject).size = a.size;
        push('size', next);
      }
    }
  }
  scene.relations.forEach((r, i) => {
    const next = cloneScene(scene);
    (next.relations[i] as SceneRelation).relation = OPPOSITE[r.relation];
    push('relation', next);
  });
  if (scene.relations.length === 2) {
    const next = cloneScene(scene);
    const [r0, r1] = next.relations as [SceneRelation, SceneRelation];
    [r0.relation, r1.relation] = [r1.relation, r0.relation];
    push('relation', next);
  }
  return out;
}

/**
 * Describes how `b` differs from `a` if it is exactly one swap away (the kinds above), else null.
 * Used by tests and by anyone auditing contrast groups.
 */
export function classifySwap(a: Scene, b: Scene): SwapKind | null {
  const key = sceneKey(b);
  const hit = oneSwapNeighbours(a).find((s) => sceneKey(s.scene) === key && sameStructure(s.scene, b));
  return hit ? hit.kind : null;
}

function sameStructure(a: Scene, b: Scene): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
