/**
 * Diffs two V8 heap snapshots (taken with `node --heapsnapshot-signal=SIGUSR2` or
 * v8.writeHeapSnapshot) of one process, at 0 and at N connections, and prints the self size by
 * constructor (node type and name) per connection, largest first: what a connection costs, where.
 * Usage: node dist/bench/heap-diff.js BEFORE.heapsnapshot AFTER.heapsnapshot N [TOP]
 */
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Bytes and count by "type name" over every node of the snapshot. */
function byConstructor(file: string): Map<string, { bytes: number; count: number }> {
  const s = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f)) as [number, number, number];
  const out = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const type = types[s.nodes[i + typeAt]!]!;
    // strings and code by type only: their names are their contents
    const name = type === "object" || type === "closure" || type === "native" ? s.strings[s.nodes[i + nameAt]!]! : "";
    const key = name ? `${type} ${name}` : type;
    const row = out.get(key) ?? { bytes: 0, count: 0 };
    row.bytes += s.nodes[i + sizeAt]!;
    row.count++;
    out.set(key, row);
  }
  return out;
}

const [before, after, n, top] = process.argv.slice(2);
const connections = Number(n);
if (!before || !after || !Number.isInteger(connections) || connections < 1) {
  process.stderr.write("usage: heap-diff BEFORE.heapsnapshot AFTER.heapsnapshot CONNECTIONS [TOP]\n");
  process.exit(1);
}
const a = byConstructor(before);
const b = byConstructor(after);
const rows = [...new Set([...a.keys(), ...b.keys()])].map((key) => {
  const x = a.get(key) ?? { bytes: 0, count: 0 };
  const y = b.get(key) ?? { bytes: 0, count: 0 };
  return { key, bytes: (y.bytes - x.bytes) / connections, count: (y.count - x.count) / connections };
});
rows.sort((p, q) => q.bytes - p.bytes);
const total = rows.reduce((t, r) => t + r.bytes, 0);
process.stdout.write(`heap per connection: ${total.toFixed(0)} bytes (self sizes, ${connections} connections)\n`);
for (const r of rows.slice(0, Number(top ?? 30))) process.stdout.write(`${r.bytes.toFixed(1).padStart(9)} B  ${r.count.toFixed(2).padStart(6)} ×  ${r.key}\n`);
