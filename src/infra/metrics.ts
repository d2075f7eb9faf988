import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric the service exposes on GET /metrics, declared in one place. Adding a counter is one
 * line in COUNTERS and one `deps.metrics?.inc('name', { label: value })` where the event happens.
 * Label values must come from small fixed sets (a status, a result code), never from ids or phone
 * numbers: each distinct value is a new time series.
 */
const COUNTERS = {
  ussd_screens_total: ['USSD screens served, by the screen shown (end for a closing END)', ['screen']],
  mpesa_stk_push_total: ['STK Push requests by outcome: accepted, retry (tried again), failed (final), unknown (may have reached Daraja: not pushed again)', ['outcome']],
  mpesa_stk_results_total: ['STK results received in callbacks, by ResultCode (0 = paid)', ['result_code']],
  mpesa_callbacks_total: ['STK callbacks by outcome as recorded in mpesa_callbacks (settled, failed, duplicate, orphan, mismatch, ...); error = not recorded, answered 503', ['outcome']],
  sms_total: ['SMS delivery attempts by status: sent, retry, failed', ['status']],
  sms_delivery_reports_total: ["Africa's Talking delivery reports by status", ['status']],
  orders_placed_total: ['Buy orders recorded, by channel: ussd, api, test_stk', ['channel']],
  ops_review_resolutions_total: ['Review items resolved by an operator, by action', ['action']],
} as const satisfies Record<string, readonly [string, readonly string[]]>;

const HISTOGRAMS = {
  http_request_duration_seconds: [
    'HTTP request latency by route pattern, method and status code',
    ['route', 'method', 'status'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  ],
} as const satisfies Record<string, readonly [string, readonly string[], readonly number[]]>;

/** Read from the database and the queues at each scrape (see collectGauges). */
const GAUGES = {
  gold_pool_micrograms: ['Gold in the pool in micrograms (1 g = 1e6): posted, pending (reserved for buyers), available (posted - pending)', ['state']],
  gold_issued_micrograms: ['Gold ever issued into the pool (posted), micrograms', []],
  orders_open: ['Orders not yet in a final state, by kind and status (reserved/stk_*: a reservation is held; review: waits for an operator)', ['kind', 'status']],
  outbox_unrelayed: ['Outbox rows not yet handed to the queue (should stay near 0)', []],
  queue_jobs: ['Jobs per queue and state (waiting, active, delayed, failed)', ['queue', 'state']],
  metrics_collect_errors: ['Scrape-time collectors that failed or timed out in the last scrape', ['collector']],
  process_ready: ['1 while this process answers /ready with 200', []],
} as const satisfies Record<string, readonly [string, readonly string[]]>;

export type CounterName = keyof typeof COUNTERS;
export type HistogramName = keyof typeof HISTOGRAMS;
export type GaugeName = keyof typeof GAUGES;
type LabelsOf<D extends readonly [string, readonly string[], ...unknown[]]> = Record<D[1][number], string | number>;
export type CounterLabels<N extends CounterName> = LabelsOf<(typeof COUNTERS)[N]>;
export type HistogramLabels<N extends HistogramName> = LabelsOf<(typeof HISTOGRAMS)[N]>;
export type GaugeLabels<N extends GaugeName> = LabelsOf<(typeof GAUGES)[N]>;

/** What use cases see: count an event, observe a duration. Optional in their deps; absent = not counted. */
export interface Metrics {
  inc<N extends CounterName>(name: N, labels: CounterLabels<N>, by?: number): void;
  observe<N extends HistogramName>(name: N, labels: HistogramLabels<N>, value: number): void;
}


/** A gauge sample produced at scrape time. */
export type GaugeSample = { [N in GaugeName]: { name: N; labels: GaugeLabels<N>; value: number } }[GaugeName];

/** A source of gauge samples (the database, the queues); each runs with its own deadline. */
export type GaugeCollector = { name: string; collect(): Promise<GaugeSample[]> };

/**
 * One registry per service instance (not prom-client's global one), so several services in one
 * process (the tests) never share or clash over series.
 */
export class MetricsRegistry implements Metrics {
  readonly registry = new Registry();
  private readonly counters = new Map<CounterName, Counter<string>>();
  private readonly histograms = new Map<HistogramName, Histogram<string>>();
  private readonly gauges = new Map<GaugeName, Gauge<string>>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    for (const [name, [help, labelNames]] of Object.entries(COUNTERS)) {
      this.counters.set(name as CounterName, new Counter({ name, help, labelNames: [...labelNames], registers: [this.registry] }));
    }
    for (const [name, [help, labelNames, buckets]] of Object.entries(HISTOGRAMS)) {
      this.histograms.set(name as HistogramName, new Histogram({ name, help, labelNames: [...labelNames], buckets: [...buckets], registers: [this.registry] }));
    }
    for (const [name, [help, labelNames]] of Object.entries(GAUGES)) {
      this.gauges.set(name as GaugeName, new Gauge({ name, help, labelNames: [...labelNames], registers: [this.registry] }));
    }
    // Memory, CPU, event-loop lag, heap: what a slow or leaking process shows first.
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  inc<N extends CounterName>(name: N, labels: CounterLabels<N>, by = 1): void {
    this.child(this.counterChildren, this.counters.get(name)!, name, labels as Record<string, string | number>).inc(by);
  }

  observe<N extends HistogramName>(name: N, labels: HistogramLabels<N>, value: number): void {
    this.child(this.histogramChildren, this.histograms.get(name)!, name, labels as Record<string, string | number>).observe(value);
  }

  // prom-client hashes the label set on every inc/observe; a hot path (every USSD screen, every request)
  // reuses the child for the same labels instead. Label values are bounded by design (see the header).
  private readonly counterChildren = new Map<string, ReturnType<Counter<string>['labels']>>();
  private readonly histogramChildren = new Map<string, ReturnType<Histogram<string>['labels']>>();

  private child<C>(cache: Map<string, C>, metric: { labels(l: Record<string, string | number>): C }, name: string, labels: Record<string, string | number>): C {
    let key = name;
    for (const k in labels) key += `\u0000${k}=${labels[k]}`;
    let c = cache.get(key);
    if (!c) {
      c = metric.labels(labels);
      cache.set(key, c);
    }
    return c;
  }

  /**
   * The exposition text. Gauges are refilled from the collectors first: a slow or failing collector
   * costs its own series (and sets metrics_collect_errors), never the whole scrape.
   */
  async render(collectors: GaugeCollector[], timeoutMs = 2000): Promise<string> {
    for (const g of this.gauges.values()) g.reset();
    const errors = this.gauges.get('metrics_collect_errors')!;
    await Promise.all(
      collectors.map(async (c) => {
        const samples = await withDeadline(c.collect(), timeoutMs).catch(() => null);
        errors.set({ collector: c.name }, samples ? 0 : 1);
        for (const s of samples ?? []) this.gauges.get(s.name)!.set(s.labels as Record<string, string | number>, s.value);
      }),
    );
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

async function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('collector timed out')), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
