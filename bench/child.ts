/** A generator process of `roomcast bench --procs N`: runs one share, told what to do over IPC. */
import { Share, type SharePlan, type ShareTimes } from "./run.js";

let share: Share | undefined;
const send = (type: string, value: unknown) => process.send?.({ type, value });
const ticker = setInterval(() => share && send("progress", share.progress()), 500);
ticker.unref();

process.on("message", (m: { type: "join"; plan: SharePlan } | { type: "run"; times: ShareTimes }) => {
  if (m.type === "join") {
    share = new Share(m.plan);
    share.join().then((ms) => send("joined", ms), (err: Error) => {
      process.stderr.write(`roomcast bench: ${err.message}\n`);
      process.exit(1);
    });
  } else if (m.type === "run" && share) {
    share.run(m.times).then((result) => send("result", result));
  }
});
process.on("disconnect", () => process.exit(0));
// Stopped by the coordinator: exit normally (so that `node --cpu-prof` can write its profile).
process.on("SIGTERM", () => process.exit(0));
