import { Command } from 'commander';
import type { CommandHost } from '../host.js';
import { createTrustCommand } from './trust.js';

export function createCommand(host: CommandHost): Command {
  return new Command('oidc')
    .description('CI identity: trust a CI OIDC issuer to mint short-lived keys (PLATFORM.md "CI identity")')
    .addCommand(createTrustCommand(host))
    .addHelpText(
      'after',
      `
Examples:
  $ breeze oidc trust add --issuer https://token.actions.githubusercontent.com \\
      --claim repository=acme/api --claim ref=refs/heads/main --scopes read,write --ttl 15m
  $ breeze oidc trust list
  $ breeze oidc trust delete oidc_01J...
Then in CI: breeze --server <url> run --oidc -- ./deploy.sh`,
    );
}
