// Anchors for the bench's `verify-api` section: what the platform alone costs, with none of
// Breeze's work. Two servers in this process (same Node, same versions as the server):
// - a bare Fastify (no hooks, no schemas, no logging): GET /get answers {"status":"ok"} (the size of
//   /healthz's answer); POST /post answers an object the size and shape of a VALID verification;
//   GET /me answers an object the size and shape of /v1/me's, with its `x-breeze-api-key-id` header.
//   POST ÷ GET is what reading a request body and writing the larger answer cost in Fastify and Node
//   alone: the ceiling of POST /v1/keys/verify ÷ GET /healthz; /me ÷ /get is the ceiling of
//   GET /v1/me ÷ GET /healthz.
// - bare node:http, the same three answers: the same ratios without Fastify.
// Prints one JSON line: {"url","node"}.
import http from 'node:http';
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
const ME = {
  user: { id: 'usr_01M8R4NWYPCZ4APBRRWBTHXP9W', email: 'bench-verify@example.com' },
  auth: { type: 'api_key', key_id: 'key_01M8R4NWYWBDHRK91DC3NWJ9GQ', scopes: ['read', 'write'] },
  org: {
    id: 'org_01M8R4NWYP7ZP5R5DDHD1T356R',
    name: "bench-verify@example.com's organization",
    role: 'owner',
  },
  project: { id: 'proj_01M8R4NWYPEJ7ESJC58RGMH5WQ', name: 'default' },
};
const KEY_ID_HEADER = ['x-breeze-api-key-id', 'key_01M8R4NWYWBDHRK91DC3NWJ9GQ'];

const app = Fastify({ logger: false });
app.get('/get', async () => ({ status: 'ok' }));
app.post('/post', async () => VALID);
app.get('/me', async (_request, reply) => {
  reply.header(...KEY_ID_HEADER);
  return ME;
});
const url = await app.listen({ host: '127.0.0.1', port: 0 });

const json = (res, body) => {
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
};
const bare = http.createServer((req, res) => {
  if (req.method === 'POST') {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      JSON.parse(body);
      json(res, VALID);
    });
  } else if (req.url === '/me') {
    res.setHeader(...KEY_ID_HEADER);
    json(res, ME);
  } else {
    json(res, { status: 'ok' });
  }
});
bare.keepAliveTimeout = 72_000;
await new Promise((resolve) => bare.listen(0, '127.0.0.1', resolve));
const node = `http://127.0.0.1:${bare.address().port}`;
process.stdout.write(`${JSON.stringify({ url, node })}\n`);
process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
