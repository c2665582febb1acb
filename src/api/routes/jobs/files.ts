import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { exportDir, isOutputFile, listOutputFiles, OUTPUT_FILES } from '../../../extract/files.ts';
import { ApiError, errorResponses } from '../../errors.ts';
import { requireScope } from '../../middleware/auth.ts';
import { jsonContent } from '../../schemas.ts';
import type { ApiEnv, App } from '../../types.ts';
import { JobIdParam, visibleJob } from './schema.ts';

const JobFile = z
  .object({ name: z.enum(Object.keys(OUTPUT_FILES) as [keyof typeof OUTPUT_FILES]), bytes: z.number().int(), contentType: z.string(), url: z.string() })
  .openapi('JobFile');
const JobFiles = z
  .object({ jobId: z.string(), complete: z.boolean().openapi({ description: 'True once every file is written (manifest.json last)' }), files: z.array(JobFile) })
  .openapi('JobFiles');

export const listRoute = createRoute({
  operationId: 'listJobFiles',
  tags: ['jobs'],
  summary: 'List the output files of an extraction job',
  description: 'Empty, with complete false, until the job has written them all.',
  method: 'get',
  path: '/v1/jobs/{id}/files',
  middleware: [requireScope('read')] as const,
  request: { params: JobIdParam },
  responses: {
    200: jsonContent(JobFiles, 'The files'),
    ...errorResponses(400, 403, 404),
  },
});
export type ListJobFilesResponse = z.infer<typeof JobFiles>;

const FileParams = JobIdParam.extend({
  name: z.enum(Object.keys(OUTPUT_FILES) as [keyof typeof OUTPUT_FILES]).openapi({ param: { name: 'name', in: 'path' }, example: 'embeddings.npy' }),
});

export const getRoute = createRoute({
  operationId: 'getJobFile',
  tags: ['jobs'],
  summary: 'Download an output file of an extraction job',
  description: 'Streamed. embeddings.npy is application/octet-stream (NumPy .npy v1.0, <f4, C order); the .jsonl files are application/x-ndjson.',
  method: 'get',
  path: '/v1/jobs/{id}/files/{name}',
  middleware: [requireScope('read')] as const,
  request: { params: FileParams },
  responses: {
    200: {
      description: 'The file',
      content: {
        'application/octet-stream': { schema: z.string().openapi({ type: 'string', format: 'binary' }) },
        'application/x-ndjson': { schema: z.string() },
        'application/json': { schema: z.string() },
      },
    },
    ...errorResponses(400, 403, 404),
  },
});
export type GetJobFileResponse = Blob;

async function extractionFiles(c: Context<ApiEnv>, id: string) {
  const job = await visibleJob(c, id);
  if (job.kind !== 'extract') throw new ApiError('not_found', `Job ${id} is a ${job.kind} job: it writes no files.`);
  const dir = exportDir(c.var.ctx.dataDir, job.id);
  const files = await listOutputFiles(dir);
  // manifest.json is written last: before it, the other files may be partial.
  const complete = files.some((f) => f.name === 'manifest.json');
  return { job, dir, files: complete ? files : [], complete };
}

export function registerJobFiles(app: App) {
  app.openapi(listRoute, async (c) => {
    const { job, files, complete } = await extractionFiles(c, c.req.valid('param').id);
    return c.json({ jobId: job.id, complete, files: files.map((f) => ({ ...f, url: `/v1/jobs/${encodeURIComponent(job.id)}/files/${f.name}` })) }, 200);
  });
  app.openapi(getRoute, async (c) => {
    const { id, name } = c.req.valid('param');
    const { job, dir, files } = await extractionFiles(c, id);
    const file = isOutputFile(name) ? files.find((f) => f.name === name) : undefined;
    if (!file) throw new ApiError('not_found', `Job ${job.id} has no file ${name} (${job.state}).`);
    const body = Readable.toWeb(createReadStream(`${dir}/${file.name}`)) as ReadableStream<Uint8Array>;
    return c.body(body, 200, {
      'content-type': file.contentType,
      'content-length': String(file.bytes),
      'content-disposition': `attachment; filename="${file.name}"`,
    }) as never;
  });
}
