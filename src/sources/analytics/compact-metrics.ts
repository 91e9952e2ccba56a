import { JSON_LENGTH } from '../../cache/json-size.js';
import type { MetricPointEntity, MetricsEntity } from '../models.js';
import { isoOfUnixSeconds, isUnixSeconds } from '../normalize.js';

/** A series point as the vendor sends it (checked before it gets here). */
export interface VendorSeriesPoint {
  ts: number;
  page_views: number;
  sessions: number;
}

/** What L2 keeps of a metrics entity (see CompactMetrics.toStored). */
export interface StoredMetrics {
  pageViews: number;
  sessions: number;
  avgSessionSeconds: number;
  conversionRate: number;
  lastActiveAt: string | null;
  /** Instant (Unix seconds), page views, sessions per point, flat. */
  columns: number[];
}

/** A point's approximate JSON length (`{"at":"…Z","pageViews":n,"sessions":n}`, as json-size counts). */
const POINT_JSON_LENGTH = 2 + (2 + 4 + 26) + (9 + 4 + 8) + (8 + 4 + 8) + 1;

/**
 * Whether the points are oldest first, one per instant. The contract promises
 * no order, and a vendor's replica may repeat a point: a series is kept sorted
 * and without repeats, as a chart needs it.
 */
function oldestFirstOnce(points: readonly VendorSeriesPoint[]): boolean {
  for (let i = 1; i < points.length; i++) if (!(points[i]!.ts > points[i - 1]!.ts)) return false;
  return true;
}

/** Where the columns are kept: a non-enumerable symbol, so the entity compares and walks as its plain fields (a `#` field's brand check fails on the copies test matchers make). */
const COLUMNS = Symbol('series columns');

/**
 * A metrics entity that keeps its series as one Float64Array (instant,
 * page views, sessions per point) and makes the point objects only when the
 * series is read. A list of 50 users' page views cached 31 objects per user
 * it never read; kept as objects, the series were half of what a cold list
 * cost in CPU and garbage collection (bench/RESULTS.md). It reads, serializes
 * (`toJSON`) and sizes (`JSON_LENGTH`, for L1) as the plain entity; L2 keeps
 * its columns (`toStored`).
 */
export class CompactMetrics implements MetricsEntity {
  declare private readonly [COLUMNS]: Float64Array;

  constructor(
    readonly pageViews: number,
    readonly sessions: number,
    readonly avgSessionSeconds: number,
    readonly conversionRate: number,
    readonly lastActiveAt: string | null,
    /** Instant (Unix seconds), page views, sessions per point. */
    columns: Float64Array,
  ) {
    Object.defineProperty(this, COLUMNS, { value: columns });
  }

  /** From a vendor's row (its series checked before it gets here). */
  static fromVendor(
    pageViews: number,
    sessions: number,
    avgSessionSeconds: number,
    conversionRate: number,
    lastActiveAt: string | null,
    points: readonly VendorSeriesPoint[],
  ): CompactMetrics {
    if (!oldestFirstOnce(points)) points = [...points].sort((a, b) => a.ts - b.ts).filter((p, i, sorted) => i === 0 || p.ts !== sorted[i - 1]!.ts);
    const columns = new Float64Array(points.length * 3);
    for (let i = 0; i < points.length; i++) {
      const p = points[i]!;
      columns[i * 3] = p.ts;
      columns[i * 3 + 1] = p.page_views;
      columns[i * 3 + 2] = p.sessions;
    }
    return new CompactMetrics(pageViews, sessions, avgSessionSeconds, conversionRate, lastActiveAt, columns);
  }

  /**
   * The form L2 keeps: the columns as one array of numbers. 30 daily points make an L2 entry of ~740 bytes against
   * ~2,170 as ISO points, and neither side makes 30 point objects and their ISO strings (bench/RESULTS.md, session 24).
   */
  static toStored(metrics: MetricsEntity): StoredMetrics {
    const { pageViews, sessions, avgSessionSeconds, conversionRate, lastActiveAt } = metrics;
    let columns: number[];
    if (metrics instanceof CompactMetrics) columns = Array.from(metrics[COLUMNS]);
    else columns = metrics.series.flatMap((p) => [Date.parse(p.at) / 1000, p.pageViews, p.sessions]);
    return { pageViews, sessions, avgSessionSeconds, conversionRate, lastActiveAt, columns };
  }

  /** Back from L2; null for anything not in the stored form (read as a miss). */
  static fromStored(stored: unknown): CompactMetrics | null {
    if (typeof stored !== 'object' || stored === null) return null;
    const s = stored as Partial<Record<keyof StoredMetrics, unknown>>;
    const numbers = [s.pageViews, s.sessions, s.avgSessionSeconds, s.conversionRate];
    if (!numbers.every((n) => typeof n === 'number' && Number.isFinite(n))) return null;
    if (s.lastActiveAt !== null && typeof s.lastActiveAt !== 'string') return null;
    const { columns } = s;
    if (!Array.isArray(columns) || columns.length % 3 !== 0) return null;
    // An instant outside Date's range would make every read of the series throw.
    for (let i = 0; i < columns.length; i += 3) {
      if (!isUnixSeconds(columns[i]) || !Number.isFinite(columns[i + 1]) || !Number.isFinite(columns[i + 2])) return null;
    }
    return new CompactMetrics(
      s.pageViews as number,
      s.sessions as number,
      s.avgSessionSeconds as number,
      s.conversionRate as number,
      s.lastActiveAt,
      Float64Array.from(columns as number[]),
    );
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
