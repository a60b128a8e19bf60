// The worker thread of the image pool (worker_pool.ts): decodes (sharp) and preprocesses (resize, normalize,
// patchify, sha256) one image per message, off the server's event loop. The pixel values go back transferred.
import { parentPort } from 'node:worker_threads';
import { decodeImage } from './decode.js';
import { processImage } from './process.js';
import { serializeError, type WorkerReply, type WorkerTask } from './worker_pool.js';

const port = parentPort;
if (port === null) throw new Error('image_worker.ts runs as a worker thread (worker_pool.ts starts it)');

port.on('message', (task: WorkerTask) => {
  void run(task).then(
    // patchify allocates the pixel values' own ArrayBuffer: moved to the main thread, not copied.
    (reply) => port.postMessage(reply, reply.ok ? [reply.image.pixelValues.buffer as ArrayBuffer] : []),
    (err: unknown) => port.postMessage({ id: task.id, ok: false, error: serializeError(err) } satisfies WorkerReply),
  );
});

async function run(task: WorkerTask): Promise<WorkerReply> {
  const rgb = await decodeImage(task.bytes, task.where);
  return { id: task.id, ok: true, image: processImage(rgb, task.cfg, task.where) };
}
