// Bundles the pages' scripts (web/src/) with esbuild into services/web/static/dist/, where the
// web app serves them and inlines them into the saved verifier. Run by `npm run build` at set-up.
import { build } from "esbuild";

await build({
  entryPoints: {
    verify: "web/src/verify/main.js",
    portal: "web/src/portal/main.js",
    console: "web/src/console/main.js",
  },
  outdir: "services/web/static/dist",
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "none",
  logLevel: "warning",
});

// Gzipped copies beside the bundles and the stylesheet, served to browsers that take gzip.
import fs from "node:fs";
import zlib from "node:zlib";

for (const file of [
  "services/web/static/dist/verify.js",
  "services/web/static/dist/portal.js",
  "services/web/static/dist/console.js",
  "services/web/static/site.css",
]) {
  fs.writeFileSync(`${file}.gz`, zlib.gzipSync(fs.readFileSync(file), { level: 9 }));
}
