"""Anvil's own cost per transaction as its chain grows, with no OfferSeal code on the path:
plain self-transfers (21,000 gas) from one key, each mined in its own block (automine), in
rounds of 500; each round's rate against the first round's (the ceiling). `make chaos` weighs
the agreement path under faults against its fault-free rate; this is why that rate falls
during a run whatever the faults.

Run: `.venv/bin/python -m bench.anvil_growth [--rounds 8] [anvil arguments...]`
(for example `--prune-history`).
"""

from __future__ import annotations

import argparse
import time

from offerseal.shared import chain
from offerseal.shared.anvil import AnvilProcess
from offerseal.shared.config import ANVIL_DEV_KEY
from offerseal.shared.net import free_port

ROUND = 500


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    args, anvil_args = parser.parse_known_args(argv)
    anvil = AnvilProcess(free_port(), extra_args=tuple(anvil_args))
    try:
        w3 = chain.connect(anvil.url)
        signer = chain.account(ANVIL_DEV_KEY)
        nonce = w3.eth.get_transaction_count(signer.address)
        price = w3.eth.gas_price * 2
        first = None
        print("| blocks | tx/s | against the first round |\n|---|---|---|")
        for _ in range(args.rounds):
            started = time.monotonic()
            for _ in range(ROUND):
                tx = {
                    "to": signer.address,
                    "value": 0,
                    "gas": 21_000,
                    "gasPrice": price,
                    "nonce": nonce,
                    "chainId": 31337,
                }
                w3.eth.send_raw_transaction(signer.sign_transaction(tx).raw_transaction)
                nonce += 1
            rate = ROUND / (time.monotonic() - started)
            first = first or rate
            print(f"| {w3.eth.block_number} | {rate:.0f} | {rate / first:.2f} |", flush=True)
    finally:
        anvil.stop()


if __name__ == "__main__":
    main()
