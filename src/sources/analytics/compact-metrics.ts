import { JSON_LENGTH } from '../../cache/json-size.js';
import type { MetricPointEntity, MetricsEntity } from '../models.js';
import { isoOfUnixSeconds } from '../normalize.js';

/** A series point as the vendor sends it (checked before it gets here). */
export interface VendorSeriesPoint {
  ts: number;
  page_views: number;
  sessions: number;
}

/** A point's approximate JSON length (`{"at":"…Z","pageViews":n,"sessions":n}`, as json-size counts). */
const POINT_JSON_LENGTH = 2 + (2 + 4 + 26) + (9 + 4 + 8) + (8 + 4 + 8) + 1;

/**
 * A metrics entity that keeps its series as one Float64Array (instant,
 * page views, sessions per point) and makes the point objects only when the
 * series is read. A list of 50 users' page views cached 31 objects per user
 * it never read; kept as objects, the series were half of what a cold list
 * cost in CPU and garbage collection (bench/RESULTS.md). It reads, serializes
 * (`toJSON`, for L2) and sizes (`JSON_LENGTH`, for L1) as the plain entity.
 */
/** Where the columns are kept: a non-enumerable symbol, so the entity compares and walks as its plain fields (a `#` field's brand check fails on the copies test matchers make). */
const COLUMNS = Symbol('series columns');

export class CompactMetrics implements MetricsEntity {
  declare private readonly [COLUMNS]: Float64Array;

  constructor(
    readonly pageViews: number,
    readonly sessions: number,
    readonly avgSessionSeconds: number,
    readonly conversionRate: number,
    readonly lastActiveAt: string | null,
    points: readonly VendorSeriesPoint[],
  ) {
    const columns = new Float64Array(points.length * 3);
    for (let i = 0; i < points.length; i++) {
      const p = points[i]!;
      columns[i * 3] = p.ts;
      columns[i * 3 + 1] = p.page_views;
      columns[i * 3 + 2] = p.sessions;
    }
    Object.defineProperty(this, COLUMNS, { value: columns });
  }

  /** The points, made on each read (a query asks for them once; keeping them would undo the saving). */
  get series(): MetricPointEntity[] {
    const columns = this[COLUMNS];
    const points = new Array<MetricPointEntity>(columns.length / 3);
    for (let i = 0; i < points.length; i++) {
      points[i] = { at: isoOfUnixSeconds(columns[i * 3]!), pageViews: columns[i * 3 + 1]!, sessions: columns[i * 3 + 2]! };
    }
    return points;
  }

  toJSON(): MetricsEntity {
    const { pageViews, sessions, avgSessionSeconds, conversionRate, lastActiveAt } = this;
    return { pageViews, sessions, avgSessionSeconds, conversionRate, lastActiveAt, series: this.series };
  }

  [JSON_LENGTH](): number {
    return 120 + (this.lastActiveAt?.length ?? 2) + (this[COLUMNS].length / 3) * POINT_JSON_LENGTH;
  }
}
