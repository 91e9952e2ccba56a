import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS (`main`) and ESM (`module`) without an exports map. Node
    // and the libraries (yoga, graphql-tools) load the CJS one; Vite would pick
    // the ESM one for our sources, giving two GraphQLError classes. Pin the one
    // production runs.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Most of a suite's time is waiting (timers, backoff, Redis reconnects), not CPU: on this 2-core machine the whole
    // run took 330 s with 2 workers, 288 s with 3 and 219 s with 4, the CPU ~155 % busy at 4.
    maxWorkers: 4,
    // CI also writes a JSON report, from which .ci/run prints the plain "N passed, N failed" line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.ci/test-results.json' }]] : ['default'],
  },
});
