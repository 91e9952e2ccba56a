/**
 * Imports flow one way (DESIGN.md): the entry point, then the server and the
 * config loader, then what serves a request (plugins, resolvers, the write
 * path, observers), then the sources, then the cache tiers and the resilience
 * policies, then plain values and types at the bottom. A module may import
 * its own layer or any below it, never one above; no cycles; production code
 * never imports the simulator. `npm run lint` runs this; CI fails on a breach.
 */
const LAYERS = [
  { name: 'entry', path: '^src/((main|embedded-vendors|serve)\\.ts$|cluster/)' },
  { name: 'composition', path: '^src/(server|config)\\.ts$' },
  { name: 'request', path: '^src/((schema|context|use-input-error-codes)\\.ts$|(resolvers|ops|auth|writes|plugins|http|webhooks|realtime|generated)/|observability/)' },
  { name: 'sources', path: '^src/sources/' },
  { name: 'policies and tiers', path: '^src/(cache|resilience)/' },
  {
    name: 'values and types',
    path: '^src/((errors|config-types|viewer|redis|egress-proxy|without-passwords|maybe-promise|json-depth|logger|siblings|container-limits|line-every|monotonic-breaker)\\.ts$)',
  },
];

/** A vendor's contract tests live in its folder; they drive the simulator, and nothing imports them. */
const TESTS = '\\.test\\.ts$';

const upward = LAYERS.flatMap((layer, i) =>
  LAYERS.slice(0, i).map((above) => ({
    name: `no-upward-${layer.name.replace(/\W+/g, '-')}-to-${above.name.replace(/\W+/g, '-')}`,
    comment: `${layer.name} may not import ${above.name}: imports flow down (see .dependency-cruiser.cjs)`,
    severity: 'error',
    from: { path: layer.path, pathNot: TESTS },
    to: { path: above.path },
  })),
);

module.exports = {
  forbidden: [
    ...upward,
    { name: 'no-circular', severity: 'error', comment: 'a cycle ties modules so none can change alone', from: { path: '^src/' }, to: { circular: true } },
    {
      name: 'no-simulator-in-production',
      severity: 'error',
      comment: "the simulated vendors are loaded dynamically by the demo, never imported (a vendor folder's contract tests may drive them)",
      from: { path: '^src/', pathNot: TESTS },
      to: { path: '^simulator/' },
    },
    {
      name: 'every-module-has-a-layer',
      severity: 'error',
      comment: 'a new folder under src/ needs its place in LAYERS',
      from: { path: '^src/', pathNot: [TESTS, ...LAYERS.map((l) => l.path)].join('|') },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
