#!/usr/bin/env node
// Breeze's doc example, GET /v1/voices, as your own API accepting Breeze keys through @breeze/verify.
//
//   npm run example:voices                       # a throw-away Breeze (the server that ships in this
//                                                # package) with a demo user and keys: prints curl lines
//   BREEZE_SERVER=https://breeze.example.com BREEZE_VERIFY_KEY=brz_... npm run example:voices
//                                                # against a served Breeze (or your embedded one)
//
// PORT (default 3000) and HOST (default 127.0.0.1) choose where the example listens.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createVerifier } from '@breeze/verify';
import { breezeFastify } from '@breeze/verify/fastify';
import Fastify from 'fastify';

const VOICES = [
  {
    voice_id: 'voice_aria',
    name: 'Aria',
    category: 'premade',
    labels: { accent: 'american', age: 'middle aged' },
  },
  {
    voice_id: 'voice_roger',
    name: 'Roger',
    category: 'premade',
    labels: { accent: 'american', age: 'middle aged' },
  },
  {
    voice_id: 'voice_sarah',
    name: 'Sarah',
    category: 'premade',
    labels: { accent: 'american', age: 'young' },
  },
  {
    voice_id: 'voice_george',
    name: 'George',
    category: 'premade',
    labels: { accent: 'british', age: 'middle aged' },
  },
];

/** Builds the voices API: every route requires a Breeze key unless its config says otherwise (JWTs only if the verifier allows them). */
export async function buildVoicesApi(verifier) {
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } });
  await app.register(breezeFastify, { verifier, scopes: ['read'] });
  app.get('/healthz', { config: { breeze: false } }, async () => ({ status: 'ok' }));
  app.get('/v1/voices', async (request) => {
    // request.breeze: who is calling (key_id for request-log attribution, org, project, user, scopes)
    request.log.info({ key_id: request.breeze?.key_id, org_id: request.breeze?.org_id }, 'voices listed');
    return { voices: VOICES };
  });
  app.get('/v1/voices/:voice_id', async (request, reply) => {
    const voice = VOICES.find((v) => v.voice_id === request.params.voice_id);
    if (!voice) {
      return reply.code(404).send({
        error: {
          code: 'NOT_FOUND',
          message: 'No such voice.',
          statusCode: 404,
          category: 'REQUEST',
          request_id: request.id,
        },
      });
    }
    return voice;
  });
  return app;
}

/** A Breeze server of our own, on a temp data dir, with a demo user: returns its URL and two keys. */
async function startDemoBreeze() {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const dataDir = mkdtempSync(join(tmpdir(), 'breeze-voices-demo-'));
  const child = spawn(
    process.execPath,
    [join(root, 'bin', 'breeze.js'), 'serve', '--port', '0', '--data-dir', dataDir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const stop = () => {
    child.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  };
  const url = await new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`breeze serve did not start:\n${err}`)), 30_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      err += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`breeze serve exited (${code}); did you run "npm run build"?\n${err}`));
    });
  });
  const call = async (method, path, body, token) => {
    const res = await fetch(url + path, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${json?.error?.code}`);
    return json;
  };
  // sign a demo user in with the email-code flow (a JWT: it acts as the owner of the user's
  // organization, who may grant "verify"); the code arrives in the dev outbox
  const email = 'demo@voices.example';
  const { id } = await call('POST', '/auth/code', { email, type: 'jwt' });
  const outbox = join(dataDir, 'outbox');
  let code;
  for (let i = 0; i < 100 && !code; i++) {
    // finished mails only: the outbox writes `.<name>.tmp` first and renames it when complete
    for (const f of readdirSync(outbox, { withFileTypes: true })) {
      if (!f.isFile() || !f.name.endsWith('.eml') || f.name.startsWith('.')) continue;
      code ??= /Your Breeze code: ([0-9A-Z]{8})/.exec(readFileSync(join(outbox, f.name), 'utf8'))?.[1];
    }
    if (!code) await new Promise((r) => setTimeout(r, 50));
  }
  if (!code) throw new Error('no code mail in the dev outbox');
  const { token } = await call('POST', `/auth/code/${id}/verifications`, { code });
  const { api_key: verifyKey } = await call(
    'POST',
    '/v1/api-keys',
    { name: 'voices-api verifier', scopes: ['verify'] },
    token,
  );
  const { api_key: callerKey, key_id } = await call(
    'POST',
    '/v1/api-keys',
    { name: 'voices demo caller', scopes: ['read'] },
    token,
  );
  return { url, verifyKey, callerKey, callerKeyId: key_id, stop };
}

async function main() {
  let server = process.env.BREEZE_SERVER;
  let verifyKey = process.env.BREEZE_VERIFY_KEY;
  let demo;
  if (!server || !verifyKey) {
    if (server || verifyKey) {
      console.error(
        'Set both BREEZE_SERVER and BREEZE_VERIFY_KEY (a key with the "verify" scope), or neither for the demo.',
      );
      process.exit(2);
    }
    demo = await startDemoBreeze();
    server = demo.url;
    verifyKey = demo.verifyKey;
  }
  const verifier = createVerifier({ server, apiKey: verifyKey });
  const app = await buildVoicesApi(verifier);
  const shutdown = async () => {
    await app.close();
    await verifier.close();
    demo?.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  const address = await app.listen({
    host: process.env.HOST ?? '127.0.0.1',
    port: Number(process.env.PORT ?? 3000),
  });
  console.log(`voices-api listening on ${address} (Breeze: ${server})`);
  if (demo) {
    // one write, so that whoever reads our output gets every line at once
    console.log(
      [
        `demo Breeze key (read scope, throw-away server): ${demo.callerKey}`,
        `  curl -H 'xi-api-key: ${demo.callerKey}' ${address}/v1/voices`,
        `  curl -H 'x-api-key: ${demo.callerKey}'  ${address}/v1/voices`,
        `  curl -H 'Authorization: Bearer ${demo.callerKey}' ${address}/v1/voices`,
        `  curl -i ${address}/v1/voices          # 401 AUTH_REQUIRED in Breeze's error shape`,
      ].join('\n'),
    );
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
