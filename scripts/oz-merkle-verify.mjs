// Independent check of an OfferSeal proof bundle with OpenZeppelin's own npm package.
// Reads bundles (JSON array, or one object) on stdin; prints one JSON line per bundle:
// {"valid": StandardMerkleTree.verify(root, encoding, values, proof)}.
// With --tree, reads {"values": [[sha, salt], ...]} and prints the root StandardMerkleTree.of builds.
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

const input = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (c) => (data += c));
  process.stdin.on("end", () => resolve(data));
}));

if (process.argv.includes("--tree")) {
  const tree = StandardMerkleTree.of(input.values, ["bytes32", "bytes32"]);
  console.log(JSON.stringify({ root: tree.root }));
} else {
  for (const b of Array.isArray(input) ? input : [input]) {
    let valid = false;
    try {
      valid = StandardMerkleTree.verify(b.merkle.root, b.leaf.encoding, b.leaf.values, b.merkle.proof);
    } catch (e) {
      valid = false;
    }
    console.log(JSON.stringify({ valid }));
  }
}
