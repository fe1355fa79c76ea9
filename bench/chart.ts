/** A small SVG bar chart of the peers comparison: deliveries/s and p99 per workload and system. */
export interface ChartRow {
  workload: string;
  system: string;
  deliveredPerS: number;
  p99: number;
  usPerDelivery: number;
  joinS: number;
}

const COLORS: Record<string, string> = { roomcast: "#2563eb", official: "#f59e0b", article: "#10b981", floor: "#6b7280" };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

export function renderChart(rows: ChartRow[]): string {
  const all = [...new Set(rows.map((r) => r.workload))];
  const delivering = all.filter((w) => rows.some((r) => r.workload === w && r.deliveredPerS > 0));
  const systems = [...new Set(rows.map((r) => r.system))];
  // [title, value, unit, workloads, log scale]: p99 spans milliseconds to seconds across systems
  const panels: [string, (r: ChartRow) => number, string, string[], boolean?][] = [
    ["deliveries per second (higher is better; all deliver what is offered)", (r) => r.deliveredPerS, "/s", delivering],
    ["server CPU µs per delivered message (lower is better)", (r) => r.usPerDelivery, "µs", delivering],
    ["p99 latency, ms, log scale (lower is better)", (r) => r.p99, "ms", delivering, true],
    ["seconds until every client has joined (lower is better)", (r) => r.joinS, "s", all],
  ];
  const groupW = 200, barW = 36, panelH = 220, top = 50, left = 40;
  const width = left + all.length * groupW + 20;
  const height = top + panels.length * (panelH + 60) + 30;
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`, `<rect width="100%" height="100%" fill="white"/>`];
  systems.forEach((s, i) => out.push(`<rect x="${left + i * 110}" y="12" width="12" height="12" fill="${COLORS[s] ?? "#999"}"/><text x="${left + i * 110 + 16}" y="22">${esc(s)}</text>`));
  panels.forEach(([title, value, unit, workloads, log], p) => {
    const y0 = top + p * (panelH + 60);
    const max = Math.max(...rows.filter((r) => workloads.includes(r.workload)).map(value).filter((v) => Number.isFinite(v)), 1);
    out.push(`<text x="${left}" y="${y0 + 12}" font-weight="bold">${esc(title)}</text>`);
    workloads.forEach((w, g) => {
      const gx = left + g * groupW;
      systems.forEach((s, i) => {
        const v = value(rows.find((r) => r.workload === w && r.system === s) ?? ({} as ChartRow));
        if (!Number.isFinite(v)) return;
        const h = (log ? Math.log10(1 + v) / Math.log10(1 + max) : v / max) * (panelH - 40);
        const x = gx + i * (barW + 4);
        const y = y0 + panelH - h;
        out.push(`<rect x="${x}" y="${y}" width="${barW}" height="${h}" fill="${COLORS[s] ?? "#999"}"/>`);
        out.push(`<text x="${x + barW / 2}" y="${y - 3}" text-anchor="middle">${v < 10 ? v.toFixed(1) : Math.round(v)}</text>`);
      });
      out.push(`<text x="${gx + (systems.length * (barW + 4)) / 2}" y="${y0 + panelH + 16}" text-anchor="middle">${esc(w)}</text>`);
    });
    out.push(`<text x="${width - 10}" y="${y0 + 12}" text-anchor="end" fill="#666">${unit}</text>`);
  });
  out.push("</svg>");
  return out.join("\n");
}
