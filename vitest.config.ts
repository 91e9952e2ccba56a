import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Suites start real HTTP servers; two cores do not gain from more forks.
    maxWorkers: 2,
  },
});
