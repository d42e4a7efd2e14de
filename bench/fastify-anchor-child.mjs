// Anchor for the bench's `verify-api` section: a bare Fastify (same version as the server, no
// hooks, no schemas, no logging) with GET /get and POST /post, both answering {"status":"ok"}.
// POST ÷ GET with the verify workload's JSON body is what reading a request body costs in Fastify
// alone, the ceiling of POST /v1/keys/verify ÷ GET /healthz. Prints its URL on stdout.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/get', async () => ({ status: 'ok' }));
app.post('/post', async () => ({ status: 'ok' }));
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ url })}\n`);
process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
