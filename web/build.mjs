// Bundles the pages' scripts (web/src/) with esbuild into services/web/static/dist/, where the
// web app serves them and inlines them into the saved verifier. Run by `npm run build` at set-up.
//
// The texts come from the one catalogue (services/shared/catalogue/<language>.json). A script
// imports "catalogue:" + an area: it gets { language: { key: text } } holding the site's and the
// verify page's texts (every key outside the AREAS below) plus that area's (`catalogue:portal`);
// `catalogue:site` is the site's alone. The PDFs' and messages' texts never reach a browser.
import fs from "node:fs";
import path from "node:path";
import { build } from "esbuild";

const CATALOGUE = "services/shared/catalogue";
const AREAS = ["portal", "console", "inapp", "pdf", "notify"];

const catalogue = {
  name: "catalogue",
  setup(b) {
    b.onResolve({ filter: /^catalogue:/ }, (args) => ({ path: args.path, namespace: "catalogue" }));
    b.onLoad({ filter: /.*/, namespace: "catalogue" }, (args) => {
      const area = args.path.slice("catalogue:".length);
      if (area !== "site" && !AREAS.includes(area)) throw new Error(`unknown catalogue area ${area}`);
      const wanted = (key) => !AREAS.includes(key.split(".")[0]) || key.startsWith(`${area}.`);
      const out = {};
      const files = fs.readdirSync(CATALOGUE).filter((name) => name.endsWith(".json")).sort();
      for (const file of files) {
        const texts = JSON.parse(fs.readFileSync(path.join(CATALOGUE, file), "utf8"));
        out[file.slice(0, -".json".length)] = Object.fromEntries(
          Object.entries(texts).filter(([key]) => wanted(key)),
        );
      }
      return { contents: JSON.stringify(out), loader: "json", watchFiles: files.map((f) => path.join(CATALOGUE, f)) };
    });
  },
};

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
  plugins: [catalogue],
});

// Gzipped copies beside the bundles and the stylesheet, served to browsers that take gzip.
import zlib from "node:zlib";

for (const file of [
  "services/web/static/dist/verify.js",
  "services/web/static/dist/portal.js",
  "services/web/static/dist/console.js",
  "services/web/static/site.css",
]) {
  fs.writeFileSync(`${file}.gz`, zlib.gzipSync(fs.readFileSync(file), { level: 9 }));
}
