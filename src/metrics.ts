import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The process's Prometheus metrics, served at /metrics. One registry per context (tests build many
 * in one process); add a metric here as a field so every part of Mira finds it in one place.
 * Gauges that describe state (queues, indexes, jobs) are filled at scrape time by `collectors`.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mira_' });
  const collectors: (() => Promise<void>)[] = [];
  const collectFirst = async () => {
    await Promise.all(collectors.map((c) => c().catch(() => {})));
  };
  return {
    registry,
    /** Called before each scrape to refresh the state gauges. */
    collectors,
    async scrape(): Promise<string> {
      await collectFirst();
      return registry.metrics();
    },
    httpRequestDuration: new Histogram({
      name: 'mira_http_request_duration_seconds',
      help: 'HTTP request duration by method, route pattern and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    inferenceBatchSize: new Histogram({
      name: 'mira_inference_batch_size',
      help: 'Items per inference batch, by graph',
      labelNames: ['graph'] as const,
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    }),
    inferenceQueueWait: new Histogram({
      name: 'mira_inference_queue_wait_seconds',
      help: 'How long the oldest item of a batch waited for it, by graph',
      labelNames: ['graph'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    queueDepth: new Gauge({ name: 'mira_queue_depth', help: 'Jobs waiting, delayed or active, by kind', labelNames: ['kind'] as const, registers: [registry] }),
    indexSize: new Gauge({ name: 'mira_index_vectors', help: 'Live vectors per index', labelNames: ['collection', 'model'] as const, registers: [registry] }),
    indexTombstoneRatio: new Gauge({ name: 'mira_index_tombstone_ratio', help: 'Deleted share of each index graph', labelNames: ['collection', 'model'] as const, registers: [registry] }),
    jobs: new Gauge({ name: 'mira_jobs', help: 'Job records by kind and state', labelNames: ['kind', 'state'] as const, registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
