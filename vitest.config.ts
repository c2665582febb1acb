import { defineConfig } from 'vitest/config';

/**
 * Two groups, run one after the other:
 * - `suite`: everything, two files at a time (two cores).
 * - `timing`: files named *.timing.test.ts (event-loop lag and the like), run last and alone, so a
 *   neighbouring file's inference does not take the cores they measure.
 */
export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.timing.test.ts', '**/node_modules/**'],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'timing',
          include: ['test/**/*.timing.test.ts'],
          fileParallelism: false,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
