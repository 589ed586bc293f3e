// Signs an eth_signTypedData_v4 payload with ethers (an implementation independent of
// OfferSeal's Python code). stdin: {"privateKey": "0x...", "typedData": {...}}; stdout: the
// signature. Used by the tests to show that a standard wallet library's signature is accepted.
import { Wallet } from "ethers";

const input = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (c) => (data += c));
  process.stdin.on("end", () => resolve(data));
}));
const { types, domain, message, primaryType } = input.typedData;
const { EIP712Domain, ...rest } = types; // ethers derives the domain type itself
const wallet = new Wallet(input.privateKey);
const signature = await wallet.signTypedData(domain, { [primaryType]: rest[primaryType] }, message);
console.log(signature);
