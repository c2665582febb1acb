/**
 * What can be checked of docker/ without a Docker engine: Compose itself parses and resolves
 * compose.yaml (Debian's docker-compose, as CI runs it), the services keep the settings the
 * deployment depends on, and every path the Dockerfiles copy exists in the build context.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO } from '../support/env.ts';

const hasCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;
if (!hasCompose) console.warn('compose.yaml check skipped: docker-compose is not installed (apt-get install -y docker-compose)');

interface Service {
  image?: string;
  command?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: string[];
  environment?: Record<string, string>;
  user?: string;
}

describe.skipIf(!hasCompose)('docker/compose.yaml as docker-compose reads it', () => {
  const run = () => spawnSync('docker-compose', ['-f', 'docker/compose.yaml', 'config'], { cwd: REPO, encoding: 'utf8', env: { ...process.env, COMPOSE_PROJECT_NAME: 'mira' } });

  it('parses, and its services keep the settings the deployment relies on', () => {
    const r = run();
    expect(r.status, r.stderr).toBe(0);
    const config = parse(r.stdout) as { services: Record<string, Service>; volumes: Record<string, unknown> };
    const { postgres, redis, migrate, api, worker } = config.services;
    expect(Object.keys(config.services).sort()).toEqual(['api', 'migrate', 'postgres', 'redis', 'worker']);

    expect(postgres!.image).toMatch(/^postgres:15/);
    expect(postgres!.volumes).toContain('pg-data:/var/lib/postgresql/data:rw');
    expect(Object.keys(config.volumes)).toEqual(expect.arrayContaining(['pg-data', 'redis-data', 'mira-data']));

    const redisArgs = redis!.command!.join(' ');
    expect(redisArgs).toContain('--appendonly yes');
    expect(redisArgs).toContain('--maxmemory-policy noeviction');

    for (const s of [postgres, redis, api]) expect(s!.healthcheck?.test.length, JSON.stringify(s)).toBeGreaterThan(1);
    expect(api!.healthcheck!.test.join(' ')).toContain('/readyz');

    expect(migrate!.command).toEqual(['migrate']);
    expect(migrate!.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    for (const [name, s] of Object.entries({ api, worker })) {
      expect(s!.depends_on, name).toEqual({
        migrate: { condition: 'service_completed_successfully' },
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
      expect(s!.environment!.DATABASE_URL, name).toMatch(/^postgres:\/\/mira:.*@postgres:5432\/mira$/);
      expect(s!.environment!.REDIS_URL, name).toBe('redis://redis:6379');
    }
    expect(api!.command).toEqual(['api']);
    expect(worker!.command).toEqual(['worker']);
  });
});

describe('docker/Dockerfile and Dockerfile.gpu', () => {
  const dockerfiles = ['docker/Dockerfile', 'docker/Dockerfile.gpu'];

  it.each(dockerfiles)('%s copies only paths that exist in the build context, runs as a non-root user, and has a health check', (file) => {
    const text = readFileSync(resolve(REPO, file), 'utf8');
    const sources = [...text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(5);
    const missing = sources.filter((s) => !existsSync(resolve(REPO, s)));
    expect(missing, `${file} copies paths that do not exist`).toEqual([]);
    expect(sources).toContain('models/default');
    const users = [...text.matchAll(/^USER (\S+)$/gm)].map((m) => m[1]);
    expect(users.at(-1), 'the last USER of the final stage').toBe('mira');
    expect(text).toMatch(/^HEALTHCHECK .*\n.*\/healthz/m);
    expect(text).toMatch(/^ENTRYPOINT \["\/app\/docker\/entrypoint\.sh"\]$/m);
  });

  it('the GPU image fetches the CUDA 12 provider and names the Python with torch', () => {
    const text = readFileSync(resolve(REPO, 'docker/Dockerfile.gpu'), 'utf8');
    expect(text).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install');
    expect(text).toMatch(/MIRA_EXECUTION_PROVIDER=cuda/);
    expect(text).toMatch(/MIRA_PYTHON=\/opt\/torch\/bin\/python/);
    expect(existsSync(resolve(REPO, 'node_modules/onnxruntime-node/script/install.js')), 'the install script the GPU image runs').toBe(true);
  });
});
