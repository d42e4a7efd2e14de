import { crc32, KEY_PREFIX } from '../../../core/api-key.js';
import { encodeBase62 } from '../../../core/base62.js';
import { KEY_SHAPE_SOURCE } from '../../../core/key-scan.js';

export const RULE_TOOLS = ['gitleaks', 'trufflehog', 'github'] as const;
export type RuleTool = (typeof RULE_TOOLS)[number];

/**
 * A key's shape in the regex dialect all three tools share (Go RE2 for gitleaks and trufflehog,
 * Hyperscan-like for GitHub): no lookaround, no backreference. The checksum cannot be written as a
 * regex, so these rules also match look-alikes with a wrong checksum; `breeze scan` does not.
 */
export const RULE_REGEX = `(${KEY_SHAPE_SOURCE})(?:[^0-9A-Za-z]|$)`;

/**
 * Shannon entropy (bits per character) a key reaches: 40 random base62 characters give about 4.6
 * over the 50 characters of a key; 3.5 leaves room and still drops `brz_AAAA…`-style placeholders.
 */
export const RULE_ENTROPY = 3.5;

/**
 * A string of a key's shape for the tools' test strings, with a WRONG checksum: the regexes match
 * it, `breeze scan` (and a pre-commit hook it installed) does not flag the rule where it is kept.
 */
export function exampleKey(): string {
  const body = `${KEY_PREFIX}EXAMPLEdoNotUse0123456789abcdefghijKLMNO`;
  const sum = encodeBase62(crc32(body), 6);
  return body + (sum === 'EXMPL0' ? 'EXMPL1' : 'EXMPL0');
}

/** The text `breeze scan --rules <tool>` prints. */
export function ruleFor(tool: RuleTool): string {
  switch (tool) {
    case 'gitleaks':
      return `# Breeze API keys for gitleaks: save as .gitleaks.toml (or merge the [[rules]] entry into yours).
# The regex cannot check the CRC-32 checksum; "breeze scan" does (no false positives).
title = "gitleaks with Breeze API keys"

[extend]
useDefault = true

[[rules]]
id = "breeze-api-key"
description = "Breeze API key"
regex = '''${RULE_REGEX}'''
secretGroup = 1
entropy = ${RULE_ENTROPY}
keywords = ["${KEY_PREFIX}"]
tags = ["key", "breeze"]
`;
    case 'trufflehog':
      return `# Breeze API keys for TruffleHog (v3 custom detector): trufflehog filesystem . --config=breeze.yaml
# The regex cannot check the CRC-32 checksum; "breeze scan" does (no false positives).
detectors:
  - name: BreezeAPIKey
    keywords:
      - ${KEY_PREFIX}
    regex:
      key: '${RULE_REGEX}'
    entropy: ${RULE_ENTROPY}
`;
    case 'github':
      return `# Breeze API keys as a GitHub secret scanning custom pattern
# (Settings > Code security > Secret scanning > Custom patterns > New pattern; "More options" for the rest).
# The regex cannot check the CRC-32 checksum; "breeze scan" does (no false positives).
Pattern name:      Breeze API key
Secret format:     ${KEY_SHAPE_SOURCE}
Before secret:     \\A|[^0-9A-Za-z]
After secret:      \\z|[^0-9A-Za-z]
Test string:       BREEZE_API_KEY=${exampleKey()}
`;
  }
}
