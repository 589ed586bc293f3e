// Signs eth_signTypedData_v4 payloads with ethers (an implementation independent of
// OfferSeal's Python code). stdin: {"privateKey": "0x...", "typedData": {...}}; stdout: the
// signature. With `--lines`, one such JSON object per line and one signature per line, until
// stdin closes: the tests keep one process for all their signatures (tests/signing.py).
// Used by the tests to show that a standard wallet library's signature is accepted.
import { createInterface } from "node:readline";
import { Wallet } from "ethers";

async function sign(input) {
  const { types, domain, message, primaryType } = input.typedData;
  const { EIP712Domain, ...rest } = types; // ethers derives the domain type itself
  const wallet = new Wallet(input.privateKey);
  return wallet.signTypedData(domain, { [primaryType]: rest[primaryType] }, message);
}

if (process.argv.includes("--lines")) {
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    let answer;
    try {
      answer = await sign(JSON.parse(line));
    } catch (error) {
      answer = `error: ${String(error && error.message ? error.message : error).replace(/\n/g, " ")}`;
    }
    process.stdout.write(answer + "\n");
  }
} else {
  const input = JSON.parse(await new Promise((resolve) => {
    let data = "";
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
  }));
  console.log(await sign(input));
}
