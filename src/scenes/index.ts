/** Public API of the captioned-scenes dataset (see README.md in this folder). */
export { Rng } from './rng.ts';
export {
  COLORS,
  RELATIONS,
  SHAPES,
  SIZES,
  OPPOSITE,
  classifySwap,
  describeObject,
  oneSwapNeighbours,
  sampleScene,
  sceneKey,
  validateScene,
  type Color,
  type Relation,
  type Scene,
  type SceneObject,
  type SceneRelation,
  type Shape,
  type Size,
  type SwapKind,
} from './scene.ts';
export { TEMPLATES, captionScene, captionVariants, captionVocabulary, parseCaption, renderTemplate } from './captions.ts';
export { COLOR_RGB, BACKGROUNDS, sampleLayout, type Layout, type Placement, type Background } from './layout.ts';
export { STYLES, renderScene, type RenderOptions, type Style } from './render.ts';
export { sampleScenes, fileName, type SceneRecord, type SampleOptions } from './sample.ts';
export { SPLIT_SEEDS, generateScenes, datasetInfo, type GenerateOptions, type GenerateSummary, type DatasetInfo } from './generate.ts';
