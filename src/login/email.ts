import type { LoginOptions } from '../cli/commands/login.js';
import type { CliContext } from '../cli/context.js';
import { UserError } from '../cli/errors.js';
import type { LoginResult } from '../cli/session.js';

/** Placeholder until the email login lands: this file is replaced entirely by its own issue. */
export async function runEmailLogin(_opts: LoginOptions, _ctx: CliContext): Promise<LoginResult> {
  throw new UserError('This login method is not available yet', { hint: 'Use "breeze login --with-key".' });
}
