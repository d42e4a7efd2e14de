// Anchor for the bench's `verify-api` section: a bare Fastify (same version as the server, no
// hooks, no schemas, no logging). GET /get answers {"status":"ok"} (the size of /healthz's answer);
// POST /post answers an object the size and shape of a VALID verification. POST (with the verify
// workload's JSON body) ÷ GET is what reading a request body and writing the larger answer cost in
// Fastify and Node alone: the ceiling of POST /v1/keys/verify ÷ GET /healthz. Prints its URL.
import Fastify from 'fastify';

const VALID = {
  valid: true,
  code: 'VALID',
  key_id: 'key_01M8R4NWYWBDHRK91DC3NWJ9GQ',
  org_id: 'org_01M8R4NWYP7ZP5R5DDHD1T356R',
  project_id: 'proj_01M8R4NWYPEJ7ESJC58RGMH5WQ',
  user: { id: 'usr_01M8R4NWYPCZ4APBRRWBTHXP9W', email: 'bench-verify@example.com' },
  scopes: ['read', 'write'],
  expires_at: null,
  ratelimit: { limit: 1000000000, remaining: 999999889, reset_s: 59 },
};

const app = Fastify({ logger: false });
app.get('/get', async () => ({ status: 'ok' }));
app.post('/post', async () => VALID);
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ url })}\n`);
process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
