#!/usr/bin/env node
// Child of the bench's `sdk` section: one Fastify process serving the same handler twice,
// GET /guarded behind @breeze/verify's Fastify plugin and GET /open without it (config.breeze
// false), so the two are measured side by side in the same process. Env: BREEZE_SERVER,
// BREEZE_VERIFY_KEY. Prints "listening on <url>" on stderr.
import { createVerifier } from '@breeze/verify';
import { breezeFastify } from '@breeze/verify/fastify';
import Fastify from 'fastify';

const verifier = createVerifier({ server: process.env.BREEZE_SERVER, apiKey: process.env.BREEZE_VERIFY_KEY });
const app = Fastify({ logger: false });
await app.register(breezeFastify, { verifier, scopes: ['read'] });
const voices = {
  voices: [
    { voice_id: 'voice_aria', name: 'Aria' },
    { voice_id: 'voice_roger', name: 'Roger' },
  ],
};
app.get('/guarded', async () => voices);
app.get('/open', { config: { breeze: false } }, async () => voices);
const url = await app.listen({ host: '127.0.0.1', port: 0 });
for (let i = 0; i < 50 && !verifier.streamConnected; i++) await new Promise((r) => setTimeout(r, 100));
process.stderr.write(`listening on ${url} (revocation stream ${verifier.streamConnected ? 'up' : 'down'})\n`);
const stop = async () => {
  await app.close();
  await verifier.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
