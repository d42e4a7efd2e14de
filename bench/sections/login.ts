import { type Section, SkipSection } from '../lib/section.js';

export const loginSection: Section = {
  id: 'login',
  title: 'Login latency (Approve click to key saved)',
  budgetSeconds: 150,
  async run() {
    throw new SkipSection('not written yet');
  },
};
