// Bundles the web client (web/src, with socket.io-client) into dist/web/, next to a copy of the
// page and its stylesheet. The server serves these files; nothing comes from a CDN at run time.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

mkdirSync("dist/web", { recursive: true });
await build({
  entryPoints: ["web/src/main.ts"],
  bundle: true,
  format: "iife",
  target: ["es2020"],
  minify: true,
  sourcemap: true,
  outfile: "dist/web/app.js",
  logLevel: "warning",
});
// The client SDK for pages of other applications (`<script type="module">` import from the chat's
// own origin): `roomcast/client` as one ES module, socket.io-client inside.
await build({
  entryPoints: ["src/client/index.ts"],
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: true,
  outfile: "dist/web/roomcast-client.js",
  logLevel: "warning",
});
for (const file of ["index.html", "style.css"]) copyFileSync(`web/${file}`, `dist/web/${file}`);
