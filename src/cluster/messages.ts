/** What a worker tells its primary over IPC. */
export type WorkerReport =
  | { type: "listening"; port: number }
  | { type: "connections"; count: number }
  | { type: "fatal"; message: string };

export function isWorkerReport(value: unknown): value is WorkerReport {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
}
