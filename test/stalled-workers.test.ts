import { describe, expect, it } from 'vitest';
import { StalledWorkers } from '../src/cluster/stalled-workers.js';

/** The primary's watch over its workers (test/cluster.test.ts freezes a real one), on a clock the test moves. */
describe('StalledWorkers', () => {
  it('reports a worker silent past the timeout once, and not one that spoke', () => {
    const watch = new StalledWorkers<string>(15_000);
    watch.heard('a', 0);
    watch.heard('b', 0);
    for (let t = 1000; t <= 15_000; t += 1000) {
      watch.heard('b', t);
      expect(watch.stalled(t)).toEqual([]);
    }
    watch.heard('b', 16_000);
    expect(watch.stalled(16_000)).toEqual([{ worker: 'a', silentMs: 16_000 }]);
    expect(watch.stalled(17_000)).toEqual([]);
  });

  it('after the primary itself was not running (a frozen machine thawed), every worker starts afresh', () => {
    const watch = new StalledWorkers<string>(15_000);
    watch.heard('a', 0);
    expect(watch.stalled(1000)).toEqual([]);
    // Sixty seconds pass with nobody looking: the workers' silence says nothing of them.
    expect(watch.stalled(61_000)).toEqual([]);
    expect(watch.stalled(62_000)).toEqual([]);
    // From then on the timeout runs again.
    for (let t = 63_000; t <= 76_000; t += 1000) expect(watch.stalled(t)).toEqual([]);
    expect(watch.stalled(77_000)).toEqual([{ worker: 'a', silentMs: 16_000 }]);
  });
});
