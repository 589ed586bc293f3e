"""What tests and benches share to run OfferSeal for real: its processes, their environment, keys,
scratch databases and ports (`harness.procs`). One implementation, imported by `tests/` and
`bench/`; OfferSeal itself never imports it."""
