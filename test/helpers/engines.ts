import { openStore, type Store } from '../../src/server/store/index.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from './postgres.js';
import { requirePart } from './require.js';
import { startTestServer, type TestServer } from './server.js';

/**
 * The engines a black-box suite runs on: SQLite (a file in a temp dir) and a real PostgreSQL
 * server (started once per test file, on first use). Use with `describe.each(engines())` or a loop:
 *
 *   const eng = testEngines();
 *   afterAll(() => eng.stop());
 *   for (const e of eng.list) describe.skipIf(e.skip)(e.name, () => { ... e.startServer() ... });
 */
export interface EngineUnderTest {
  name: 'sqlite' | 'postgres';
  skip: boolean;
  /** a test server over a fresh database of this engine */
  startServer(opts?: Parameters<typeof startTestServer>[0]): Promise<TestServer>;
}

export function testEngines(): { list: EngineUnderTest[]; stop(): Promise<void> } {
  const pgAvail = postgresAvailability();
  const skipPostgres = requirePart('PostgreSQL', pgAvail.available, pgAvail.why);
  let pg: Promise<TestPostgres> | undefined;
  const pgStores: Store[] = [];
  return {
    list: [
      { name: 'sqlite', skip: false, startServer: (opts = {}) => startTestServer(opts) },
      {
        name: 'postgres',
        skip: skipPostgres,
        async startServer(opts = {}) {
          pg ??= startPostgres();
          const url = await (await pg).createDatabase(uniqueDbName('engines'));
          const store = await openStore({ databaseUrl: url });
          pgStores.push(store);
          return startTestServer({ ...opts, store });
        },
      },
    ],
    async stop() {
      for (const s of pgStores) await s.close().catch(() => {});
      if (pg) await (await pg).stop();
    },
  };
}

/**
 * One character of each class API.md's text rule refuses, NUL first: C0 (TAB, CR, LF and ESC
 * included), DEL and C1.
 */
export const CONTROL_SAMPLES = [
  '\u0000',
  '\u0001',
  '\t',
  '\n',
  '\r',
  '\u001b',
  '\u001f',
  '\u007f',
  '\u0080',
  '\u0085',
  '\u009f',
];
