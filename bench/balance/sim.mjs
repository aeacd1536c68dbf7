/**
 * The balance simulation (no sockets, no timers): sessions arrive as a Poisson process, each
 * arrival is one DNS answer (zero TTL, resolvers cache nothing) chosen by `choose`, and lasts an
 * exponential time. Sites measure their load every `reportEveryS` and the report reaches the
 * nameserver `reportDelayS` later. Sampled once per simulated second.
 */

/** mulberry32: a small seeded PRNG, so every run is reproducible. */
export function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class MinHeap {
  constructor() {
    this.t = [];
    this.s = [];
  }
  get size() {
    return this.t.length;
  }
  peek() {
    return this.t[0];
  }
  push(time, site) {
    const { t, s } = this;
    let i = t.length;
    t.push(time);
    s.push(site);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (t[p] <= time) break;
      t[i] = t[p];
      s[i] = s[p];
      i = p;
    }
    t[i] = time;
    s[i] = site;
  }
  pop() {
    const { t, s } = this;
    const site = s[0];
    const lastT = t.pop();
    const lastS = s.pop();
    const n = t.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && t[r] < t[l] ? r : l;
        if (t[m] >= lastT) break;
        t[i] = t[m];
        s[i] = s[m];
        i = m;
      }
      t[i] = lastT;
      s[i] = lastS;
    }
    return site;
  }
}

/**
 * @param {object} o
 * @param {number[]} o.capacities concurrent sessions per site
 * @param {(nowS: number, report: {loads: number[], measuredAtS: number} | null, random: () => number, currentLoads: number[]) => number} o.choose
 *   (currentLoads is for the oracle row only: no DNS server knows them)
 */
export function simulate({ capacities, utilization = 0.7, meanSessionS = 30, reportEveryS = 1, reportDelayS = 2, seconds = 3600, warmupS = 300, seed = 1, choose }) {
  const random = rng(seed);
  const exp = (mean) => -Math.log(1 - random()) * mean;
  const n = capacities.length;
  const totalCapacity = capacities.reduce((a, b) => a + b, 0);
  const arrivalRate = (utilization * totalCapacity) / meanSessionS;
  const load = new Array(n).fill(0);
  const departures = new MinHeap();
  // Start at the ideal split, in steady state (exponential residual lifetimes).
  for (let i = 0; i < n; i++) {
    load[i] = Math.round(capacities[i] * utilization);
    for (let k = 0; k < load[i]; k++) departures.push(exp(meanSessionS), i);
  }
  const inFlight = []; // reports measured, not yet visible
  let visible = null;
  let nextArrival = exp(1 / arrivalRate);
  let nextReport = 0;
  let nextSample = 0;
  const samples = []; // per second: utilization per site
  for (;;) {
    const departure = departures.size > 0 ? departures.peek() : Infinity;
    const arrivalOfReport = inFlight.length > 0 ? inFlight[0].visibleAtS : Infinity;
    const now = Math.min(nextArrival, departure, nextReport, arrivalOfReport, nextSample);
    if (now >= seconds) break;
    if (now === nextSample) {
      samples.push(load.map((l, i) => l / capacities[i]));
      nextSample += 1;
    } else if (now === nextReport) {
      inFlight.push({ visibleAtS: now + reportDelayS, report: { loads: [...load], measuredAtS: now } });
      nextReport += reportEveryS;
    } else if (now === arrivalOfReport) {
      visible = inFlight.shift().report;
    } else if (now === departure) {
      load[departures.pop()]--;
    } else {
      const site = choose(now, visible, random, load);
      load[site]++;
      departures.push(now + exp(meanSessionS), site);
      nextArrival = now + exp(1 / arrivalRate);
    }
  }
  return summarize(samples.slice(warmupS), capacities, utilization);
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summarize(samples, capacities, nominal) {
  const total = capacities.reduce((a, b) => a + b, 0);
  const overNominal = [];
  const overInstant = [];
  let imbalanceSq = 0;
  let swing = 0;
  let swingCount = 0;
  let count = 0;
  for (let k = 0; k < samples.length; k++) {
    const u = samples[k];
    const ideal = u.reduce((a, x, i) => a + x * capacities[i], 0) / total; // the perfectly balanced level now
    const busiest = Math.max(...u);
    overNominal.push(busiest / nominal);
    overInstant.push(busiest / ideal);
    for (let i = 0; i < u.length; i++) {
      imbalanceSq += (u[i] - ideal) ** 2;
      if (k > 0) {
        swing += Math.abs(u[i] - samples[k - 1][i]);
        swingCount++;
      }
      count++;
    }
  }
  overNominal.sort((a, b) => a - b);
  overInstant.sort((a, b) => a - b);
  return {
    peak: overNominal[overNominal.length - 1],
    p99: quantile(overNominal, 0.99),
    peakInstant: overInstant[overInstant.length - 1],
    p99Instant: quantile(overInstant, 0.99),
    /** RMS distance of a site's utilization from the balanced level, in utilization points. */
    imbalance: Math.sqrt(imbalanceSq / count),
    /** Mean absolute change of a site's utilization from one second to the next. */
    swing: swing / swingCount,
    samples,
  };
}
