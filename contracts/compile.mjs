// Compiles the deployable contracts with the pinned solc (WebAssembly) and OpenZeppelin from
// node_modules. `node contracts/compile.mjs` writes contracts/build/<Name>.json (ABI + bytecode);
// `--check` compares instead and exits 1 when the committed artifacts are stale.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const buildDir = path.join(here, "build");
// Source file (relative to contracts/) -> contract name. test/ holds test doubles and bench/
// the naive designs that `make bench` compares against; neither is used by OfferSeal itself.
const DEPLOYABLE = {
  "EvidenceRegistry.sol": "EvidenceRegistry",
  "IntentAgreements.sol": "IntentAgreements",
  "test/SmartWalletMock.sol": "SmartWalletMock",
  "bench/SingleIntentAgreement.sol": "SingleIntentAgreement",
};

const sources = {};
for (const dir of ["", "test", "bench"]) {
  const folder = path.join(here, dir);
  for (const file of fs.readdirSync(folder).filter((f) => f.endsWith(".sol")).sort()) {
    const name = dir ? `${dir}/${file}` : file;
    sources[name] = { content: fs.readFileSync(path.join(folder, file), "utf8") };
  }
}

function findImport(importPath) {
  const candidates = [path.join(here, importPath), path.join(root, "node_modules", importPath)];
  if (sources[importPath]) return { contents: sources[importPath].content };
  for (const candidate of candidates) {
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  }
  return { error: `not found: ${importPath}` };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 1000 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(2);

const check = process.argv.includes("--check");
let stale = 0;
fs.mkdirSync(buildDir, { recursive: true });
for (const [file, name] of Object.entries(DEPLOYABLE)) {
  const c = output.contracts[file][name];
  const artifact = {
    contractName: name,
    compiler: `solc ${solc.version()}`,
    settings: { optimizer: input.settings.optimizer, evmVersion: input.settings.evmVersion },
    abi: c.abi,
    bytecode: "0x" + c.evm.bytecode.object,
    deployedBytecode: "0x" + c.evm.deployedBytecode.object,
  };
  const text = JSON.stringify(artifact, null, 2) + "\n";
  const target = path.join(buildDir, `${name}.json`);
  if (check) {
    const current = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
    if (current !== text) {
      console.error(`stale: ${path.relative(root, target)} differs from a fresh compile`);
      stale += 1;
    }
  } else {
    fs.writeFileSync(target, text);
    console.log(`wrote ${path.relative(root, target)}`);
  }
}
process.exit(stale ? 1 : 0);
