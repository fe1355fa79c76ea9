/** The named workloads of `roomcast bench --workload NAME`; every value can be overridden by its flag. */
import type { BenchOptions } from "./bench.js";

export type Workload = Pick<BenchOptions, "rooms" | "clients" | "senders" | "rate" | "durationS" | "warmupS" | "joinWindowS"> & {
  description: string;
};

export const WORKLOADS = {
  classroom: { description: "10 rooms × 100 clients, 5 senders per room at 2 msg/s", rooms: 10, clients: 100, senders: 5, rate: 2, durationS: 20, warmupS: 3, joinWindowS: 0 },
  "big-room": { description: "1 room × 2000 clients, 1 sender at 10 msg/s", rooms: 1, clients: 2000, senders: 1, rate: 10, durationS: 20, warmupS: 3, joinWindowS: 0 },
  "many-rooms": { description: "500 rooms × 4 clients, each sending 1 msg/s", rooms: 500, clients: 4, senders: 4, rate: 1, durationS: 20, warmupS: 3, joinWindowS: 0 },
  "join-storm": { description: "3000 clients join one room within 5 s: time until every one has its history and presence", rooms: 1, clients: 3000, senders: 0, rate: 1, durationS: 1, warmupS: 0, joinWindowS: 5 },
  saturation: { description: "classroom at rising rates until delivery drops below 99.9% or p99 passes 250 ms", rooms: 10, clients: 100, senders: 5, rate: 2, durationS: 8, warmupS: 2, joinWindowS: 0 },
} satisfies Record<string, Workload>;

export type WorkloadName = keyof typeof WORKLOADS;

/** Saturation: the rates per sender tried, in order. */
export const SATURATION_RATES = [2, 4, 8, 16, 32, 64, 128];
export const SATURATION_LIMITS = { minRatio: 0.999, maxP99Ms: 250 };
