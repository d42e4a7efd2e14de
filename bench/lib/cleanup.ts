/**
 * Things to undo when the bench ends, however it ends (normal end, a section's deadline, Ctrl-C):
 * child servers, PostgreSQL, browsers, temp dirs. Each section pushes its own and runs them when it
 * finishes; whatever is left runs on exit.
 */
export type Undo = () => Promise<void> | void;

export class Cleanup {
  private readonly undos: Undo[] = [];

  add(undo: Undo): void {
    this.undos.push(undo);
  }

  /** Runs every undo, newest first; one failing does not stop the others. */
  async run(): Promise<void> {
    while (this.undos.length > 0) {
      const undo = this.undos.pop()!;
      try {
        await undo();
      } catch (err) {
        console.error(`bench: cleanup step failed: ${(err as Error).message}`);
      }
    }
  }
}
