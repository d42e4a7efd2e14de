import type { Cleanup } from './cleanup.js';
import type { Dist } from './dist.js';
import type { Figure, SectionResult } from './report.js';

export interface BenchOptions {
  /** seconds per measured load run */
  seconds: number;
  /** how many times each load run is repeated (alternating order, to cancel drift) */
  rounds: number;
  connections: number;
  /** keys in the large store */
  largeStore: number;
  /** real keys in the small store (also the distinct keys sent round-robin) */
  smallStore: number;
  /** runs per command in the CLI start-up section */
  cliRuns: number;
  /** login runs per mode */
  loginRuns: number;
}

/** Thrown by a section whose prerequisites are missing: it is reported as "skipped: <why>". */
export class SkipSection extends Error {}

export interface SectionContext {
  opts: BenchOptions;
  /** undone when the section ends, however it ends */
  cleanup: Cleanup;
  dist(): Promise<Dist>;
  /** progress, on stderr */
  log(message: string): void;
  addFigure(f: Figure): void;
  addRun(run: unknown): void;
  note(text: string): void;
}

export interface Section {
  id: string;
  title: string;
  /** hard wall-clock bound; the section is abandoned (and cleaned up) past it */
  budgetSeconds: number;
  run(ctx: SectionContext): Promise<void>;
}

export type { SectionResult };
