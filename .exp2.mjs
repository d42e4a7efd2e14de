import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fork } from 'node:child_process';
const autocannon = createRequire(import.meta.url)('autocannon');
if (process.argv[2] === 'server') {
  const app = Fastify();
  app.get('/g', async () => ({ status: 'ok' }));
  app.post('/p', async () => ({ status: 'ok' }));
  app.post('/pnobody', async () => ({ status: 'ok' }));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  process.send(url);
} else {
  const child = fork(new URL(import.meta.url).pathname, ['server']);
  const url = await new Promise((r) => child.once('message', r));
  const body = JSON.stringify({ key: 'brz_' + 'a'.repeat(46), scopes: ['read'] });
  const wl = {
    get: { url: url + '/g' },
    post: { url: url + '/p', method: 'POST', headers: { 'content-type': 'application/json' }, body },
    postempty: { url: url + '/pnobody', method: 'POST' },
  };
  const cpuOf = () => { const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
  const res = {}, cpu = {};
  for (const k in wl) await autocannon({ ...wl[k], connections: 50, duration: 1 });
  for (let round = 0; round < 4; round++) for (const [k, o] of (round % 2 ? Object.entries(wl).reverse() : Object.entries(wl))) {
    const c0 = cpuOf();
    const r = await autocannon({ ...o, connections: 50, duration: 2 });
    (res[k] ??= []).push(r['2xx'] / r.duration);
    (cpu[k] ??= []).push(((cpuOf() - c0) * 1e4) / r['2xx']);
  }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  for (const k in res) console.log(k, Math.round(med(res[k])), (med(res[k]) / med(res.get)).toFixed(2), 'cpu', med(cpu[k]).toFixed(0), 'min', Math.min(...cpu[k]).toFixed(0));
  child.kill();
}
