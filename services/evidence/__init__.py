"""The evidence service: encrypted document intake, Merkle-batched anchoring, verifiable proofs."""
