"""Where OfferSeal's contracts live on a chain: configured, recorded in the database (shared by
every replica and service), or deployed when missing and auto-deploy is on. A recorded address
without code (the chain was reset) is deployed again. The EvidenceRegistry is looked up here for
both sides: the evidence service deploys it, the contracts service waits for it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import update
from web3 import Web3

from . import chain
from .db import Database
from .errors import OfferSealError
from .models import ChainDeployment, utcnow

log = logging.getLogger(__name__)

EVIDENCE_REGISTRY = "EvidenceRegistry"


class ContractMissing(OfferSealError):
    title = "Contract not deployed"


def recorded_address(db: Database, chain_id: int, name: str) -> str | None:
    with db.sessions() as session:
        record = session.get(ChainDeployment, (chain_id, name))
    return record.address if record is not None else None


def ensure_deployed(
    db: Database,
    w3: Web3,
    signer: LocalAccount,
    name: str,
    constructor_args: Sequence[Any],
    *,
    configured: str,
    auto_deploy: bool,
    data_dir: Path | None,
) -> str:
    chain_id = int(w3.eth.chain_id)
    if configured:
        if not chain.has_code(w3, configured):
            raise ContractMissing(
                f"the configured {name} {configured} has no code on chain {chain_id}"
            )
        return Web3.to_checksum_address(configured)
    recorded = recorded_address(db, chain_id, name)
    if recorded is not None and chain.has_code(w3, recorded):
        return recorded
    if not auto_deploy:
        raise ContractMissing(f"no {name} on chain {chain_id} and auto-deploy is off")
    if recorded is not None:
        log.warning(
            "%s %s has no code on chain %s any more (chain reset?): redeploying",
            name,
            recorded,
            chain_id,
        )
    address = chain.deploy(w3, signer, name, *constructor_args)
    with db.transaction() as session:
        if recorded is None:
            session.add(ChainDeployment(chain_id=chain_id, name=name, address=address))
        else:
            session.execute(
                update(ChainDeployment)
                .where(ChainDeployment.chain_id == chain_id, ChainDeployment.name == name)
                .values(address=address, deployed_at=utcnow())
            )
    if data_dir is not None:
        path = data_dir / "deployments" / f"{chain_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        known = json.loads(path.read_text()) if path.exists() else {}
        known[name] = address
        path.write_text(json.dumps(known, indent=2) + "\n")
    return address


def ensure_registry(
    db: Database,
    w3: Web3,
    signer: LocalAccount,
    *,
    configured: str,
    auto_deploy: bool,
    data_dir: Path | None,
) -> str:
    """The EvidenceRegistry address for this chain: configured, recorded, or freshly deployed
    with `signer` as its admin and anchorer (the evidence service)."""
    return ensure_deployed(
        db,
        w3,
        signer,
        EVIDENCE_REGISTRY,
        (signer.address, signer.address),
        configured=configured,
        auto_deploy=auto_deploy,
        data_dir=data_dir,
    )


def wait_for_registry(db: Database, w3: Web3, *, configured: str, timeout: float) -> str:
    """The EvidenceRegistry milestone evidence is checked against: configured, or the one the
    evidence service recorded (waiting for it to deploy when both start together)."""
    if configured:
        return Web3.to_checksum_address(configured)
    chain_id = int(w3.eth.chain_id)
    deadline = time.monotonic() + timeout
    while True:
        address = recorded_address(db, chain_id, EVIDENCE_REGISTRY)
        if address and chain.has_code(w3, address):
            return address
        if time.monotonic() > deadline:
            raise ContractMissing(
                "no EvidenceRegistry on this chain: start the evidence "
                "service first or set OFFERSEAL_REGISTRY_ADDRESS"
            )
        time.sleep(0.2)
