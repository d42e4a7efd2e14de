import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const autocannon = createRequire(import.meta.url)('autocannon');
const proc = spawn(process.execPath, ['.exp-child.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
proc.stdout.setEncoding('utf8').on('data', (d) => (out += d));
while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 50));
const c = JSON.parse(out.split('\n')[0]);
const body = JSON.stringify({ key: c.target, scopes: ['read'] });
const json = { 'content-type': 'application/json' };
const wl = {
  healthz: { url: `${c.url}/healthz` },
  getauth: { url: `${c.url}/x/getauth`, headers: { 'x-api-key': c.verifier } },
  post: { url: `${c.url}/x/post`, method: 'POST', headers: json, body },
  postschema: { url: `${c.url}/x/postschema`, method: 'POST', headers: json, body },
  postauth: { url: `${c.url}/x/postauth`, method: 'POST', headers: { ...json, 'x-api-key': c.verifier }, body },
  verify: { url: `${c.url}/v1/keys/verify`, method: 'POST', headers: { ...json, 'x-api-key': c.verifier }, body },
  me: { url: `${c.url}/v1/me`, headers: { 'xi-api-key': c.target } },
};
const cpuOf = () => { const f = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
const res = {}, cpu = {};
const names = Object.keys(wl);
for (const n of names) await autocannon({ ...wl[n], connections: 50, duration: 1 });
for (let round = 0; round < Number(process.argv[2] ?? 4); round++) {
  for (const n of round % 2 ? [...names].reverse() : names) {
    const c0 = cpuOf();
    const r = await autocannon({ ...wl[n], connections: 50, duration: 2 });
    if (r.non2xx || r.errors) console.log('ERR', n, r.non2xx, r.errors);
    (res[n] ??= []).push(r['2xx'] / r.duration);
    (cpu[n] ??= []).push(((cpuOf() - c0) * 1e4) / r['2xx']);
  }
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const ratios = (n) => res[n].map((x, i) => x / res.healthz[i]);
for (const n of names) console.log(n.padEnd(11), String(Math.round(med(res[n]))).padStart(6), 'req/s  ratio', med(ratios(n)).toFixed(2), ' cpu µs/req med', med(cpu[n]).toFixed(0), 'min', Math.min(...cpu[n]).toFixed(0));
proc.kill('SIGTERM');
