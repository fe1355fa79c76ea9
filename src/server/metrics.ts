/**
 * Prometheus metrics of one process, on GET /metrics. A registry per server (not prom-client's
 * global one), so that several servers in one test process do not share counters.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { ErrorCode } from "../protocol.js";

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    connections: new Gauge({ name: "roomcast_connections", help: "Open Socket.IO connections on this process", registers: [registry] }),
    rooms: new Gauge({ name: "roomcast_rooms", help: "Rooms with members on this process", registers: [registry] }),
    received: new Counter({ name: "roomcast_messages_received_total", help: "Chat messages accepted from this process's clients", registers: [registry] }),
    delivered: new Counter({ name: "roomcast_messages_delivered_total", help: "Chat messages written to this process's clients (one per recipient)", registers: [registry] }),
    fanoutWrites: new Counter({
      name: "roomcast_fanout_writes_total",
      help: "Writes of room events to this process's members: one per member per turn of the event loop, however many events arrived in it",
      registers: [registry],
    }),
    refusals: new Counter({ name: "roomcast_refusals_total", help: "Client events refused, by error code", labelNames: ["code"] as const, registers: [registry] }),
    slowConsumers: new Counter({
      name: "roomcast_slow_consumers_total",
      help: "Members closed because more than --max-queue-bytes waited for them in this process",
      registers: [registry],
    }),
    floodsClosed: new Counter({
      name: "roomcast_floods_closed_total",
      help: "Connections closed because their refused events ran far past the rate limit",
      registers: [registry],
    }),
    redisWaitShort: new Counter({
      name: "roomcast_redis_wait_short_total",
      help: "Messages acknowledged although fewer replicas than --redis-wait confirmed them in time (already published: never refused)",
      registers: [registry],
    }),
    redisUp: new Gauge({ name: "roomcast_redis_up", help: "1 when this process reaches its Redis (always 1 in memory mode)", registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
export type RefusalCode = ErrorCode;
