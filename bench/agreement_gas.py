"""`make bench`'s gas per intent agreement: offer and commit through the one registry contract
against one contract deployed per agreement (the naive design), same terms and signatures."""

from __future__ import annotations

import hashlib
from typing import Any

from offerseal.shared import chain
from offerseal.shared.config import ANVIL_DEV_KEY


def agreement_gas(rpc_url: str, count: int = 20) -> dict[str, Any]:
    """Gas for offer + commit per agreement: the registry design against one contract deployed
    per agreement (the naive design), same terms, same milestones, same signature scheme."""
    from offerseal.contracts.domain.agreements import Terms, commitment_typed_data

    w3 = chain.connect(rpc_url)
    employer = chain.account(ANVIL_DEV_KEY)
    candidate_key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
    candidate = chain.account(candidate_key)
    registry = chain.deploy(w3, employer, "EvidenceRegistry", employer.address, employer.address)
    agreements = w3.eth.contract(
        address=chain.deploy(w3, employer, "IntentAgreements", registry),
        abi=chain.artifact("IntentAgreements")["abi"],
    )
    now = int(w3.eth.get_block("latest")["timestamp"])
    terms = Terms(
        employer.address,
        candidate.address,
        "0x" + "ab" * 32,
        now + 30 * 86400,
        3 * 86400,
        now + 7 * 86400,
        2_500_000,
        750_000,
    )
    milestones = [(k, now + 20 * 86400, 0) for k in (1, 2, 3, 4)]

    def send(tx: Any) -> int:
        tx = dict(tx, nonce=w3.eth.get_transaction_count(employer.address))
        return int(chain.send_signed(w3, employer, tx)["gasUsed"])

    registry_gas: list[int] = []
    naive_gas: list[int] = []
    offer_gas: list[int] = []
    single = chain.artifact("SingleIntentAgreement")
    for i in range(count):
        salt = hashlib.sha256(f"bench-{i}".encode()).digest()
        agreement_id = agreements.functions.agreementIdOf(employer.address, salt).call()
        nonce = agreements.functions.nonces(candidate.address).call()
        offered = send(
            agreements.functions.offer(salt, terms.as_tuple(), milestones).build_transaction(
                {"from": employer.address}
            )
        )
        typed = commitment_typed_data(
            chain_id=31337,
            registry=agreements.address,
            agreement_id="0x" + agreement_id.hex(),
            terms=terms,
            milestones=[(k, due) for k, due, _ in milestones],
            nonce=nonce,
            ceremony_hash="0x" + "ce" * 32,  # the registry stores it: the naive design has none
        )
        signature = chain.sign_typed_data(candidate_key, typed)
        committed = send(
            agreements.functions.commit(
                agreement_id, bytes.fromhex("ce" * 32), signature
            ).build_transaction({"from": employer.address})
        )
        registry_gas.append(offered + committed)
        offer_gas.append(offered)

        factory = w3.eth.contract(abi=single["abi"], bytecode=single["bytecode"])
        deployed = chain.send_signed(
            w3,
            employer,
            dict(
                factory.constructor(agreement_id, terms.as_tuple(), milestones).build_transaction(
                    {
                        "from": employer.address,
                        "nonce": w3.eth.get_transaction_count(employer.address),
                    }
                )
            ),
        )
        contract = w3.eth.contract(address=deployed["contractAddress"], abi=single["abi"])
        typed_single = commitment_typed_data(
            chain_id=31337,
            registry=contract.address,
            agreement_id="0x" + agreement_id.hex(),
            terms=terms,
            milestones=[(k, due) for k, due, _ in milestones],
            nonce=0,
            ceremony_hash=None,
        )
        committed_single = send(
            contract.functions.commit(
                chain.sign_typed_data(candidate_key, typed_single)
            ).build_transaction({"from": employer.address})
        )
        naive_gas.append(int(deployed["gasUsed"]) + committed_single)
    mean = lambda xs: round(sum(xs) / len(xs))  # noqa: E731
    # The same offers sent as one multicall (what the contracts service sends when offers wait
    # for the signer together), by the size of the multicall.
    bundled: dict[int, int] = {}
    for size in (4, 16):
        calls = [
            bytes.fromhex(
                agreements.functions.offer(
                    hashlib.sha256(f"bench-multicall-{size}-{i}".encode()).digest(),
                    terms.as_tuple(),
                    milestones,
                )._encode_transaction_data()[2:]
            )
            for i in range(size)
        ]
        used = send(
            agreements.functions.multicall(calls).build_transaction({"from": employer.address})
        )
        bundled[size] = round(used / size)
    return {
        "agreements": count,
        "milestones": len(milestones),
        "offer_gas": mean(offer_gas),
        "offer_gas_in_multicall": bundled,
        "registry_offer_commit_gas": mean(registry_gas),
        "per_agreement_contract_gas": mean(naive_gas),
        "ratio": round(mean(naive_gas) / mean(registry_gas), 2),
    }
