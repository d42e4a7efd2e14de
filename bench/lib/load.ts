import { createRequire } from 'node:module';

// autocannon ships no types; the part the bench uses is typed here, locally (an ambient
// `declare module` would merge with the one the reliability tests carry).
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
}
interface AutocannonClient {
  setRequests(requests: AutocannonRequest[]): void;
}
interface AutocannonResult {
  latency: { p50: number; p99: number };
  duration: number;
  errors: number;
  timeouts: number;
  '2xx': number;
  statusCodeStats?: Record<string, { count: number }>;
}
type Autocannon = (opts: {
  url: string;
  connections: number;
  duration: number;
  timeout: number;
  headers: Record<string, string>;
  setupClient?: (client: AutocannonClient) => void;
}) => Promise<AutocannonResult>;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface LoadSpec {
  /** base URL of the server (loopback) */
  url: string;
  path: string;
  /** API keys to send as `xi-api-key`; none: no key. Several: each connection cycles through all. */
  keys?: readonly string[];
  connections: number;
  seconds: number;
  /** statuses counted as the expected answer (default: 2xx only) */
  expectStatus?: number;
}

export interface LoadResult {
  path: string;
  distinctKeys: number;
  connections: number;
  seconds: number;
  /** expected answers per second over the run */
  rps: number;
  total: number;
  unexpected: number;
  errors: number;
  timeouts: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  statusCodes: Record<string, number>;
}

/**
 * One bounded autocannon run. With several keys, connection i starts its cycle at offset
 * i * keys/connections, so at any moment the connections ask about different keys rather than
 * marching through the same one together (which would be the cache answering 49 of 50).
 */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const keys = spec.keys ?? [];
  let clientIndex = 0;
  const requestsFor = (offset: number): AutocannonRequest[] =>
    keys.map((_, j) => ({
      method: 'GET',
      path: spec.path,
      headers: { 'xi-api-key': keys[(offset + j) % keys.length]! },
    }));
  const result = await autocannon({
    url: spec.url + spec.path,
    connections: spec.connections,
    duration: spec.seconds,
    timeout: 10,
    headers: keys.length === 1 ? { 'xi-api-key': keys[0]! } : {},
    setupClient:
      keys.length > 1
        ? (client: AutocannonClient) => {
            const offset = Math.floor((clientIndex++ * keys.length) / spec.connections);
            client.setRequests(requestsFor(offset));
          }
        : undefined,
  });
  const statusCodes: Record<string, number> = {};
  for (const [code, v] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = v.count;
  const expected =
    spec.expectStatus === undefined ? result['2xx'] : (statusCodes[String(spec.expectStatus)] ?? 0);
  const total = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  return {
    path: spec.path,
    distinctKeys: keys.length,
    connections: spec.connections,
    seconds: result.duration,
    rps: expected / result.duration,
    total,
    unexpected: total - expected,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    statusCodes,
  };
}
