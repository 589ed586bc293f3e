"""Where OfferSeal's contracts live on a chain: configured, recorded in the database (shared by
every replica and service), or deployed when missing and auto-deploy is on. A recorded address
without code is deployed again only when the chain was reset, which is told by its genesis block:
a node with the recorded genesis but no code is behind (or not synced), and gets no new contract.
The EvidenceRegistry is looked up here for both sides: the evidence service deploys it, the
contracts service waits for it."""

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
from .errors import OfferSealError, TransientError
from .models import ChainDeployment, utcnow

log = logging.getLogger(__name__)

EVIDENCE_REGISTRY = "EvidenceRegistry"
# Anvil's (and Hardhat's) local chain: the only one where the anchoring key may also be the
# registry's admin.
DEV_CHAIN_ID = 31337


class ContractMissing(OfferSealError):
    title = "Contract not deployed"


class ChainBehind(TransientError):
    """The node answers for the chain a contract was recorded on, but not (yet) with its code or
    state: it lags behind or is still syncing. Wait; never redeploy on its word."""

    title = "Chain node behind"


def genesis_hash(w3: Web3) -> str:
    """Hash of block 0: one chain history, whatever the node's head."""
    return str(w3.eth.get_block(0)["hash"].to_0x_hex())


def recorded_address(db: Database, chain_id: int, name: str) -> str | None:
    with db.sessions() as session:
        record = session.get(ChainDeployment, (chain_id, name))
    return record.address if record is not None else None


def recorded(db: Database, chain_id: int, name: str) -> ChainDeployment | None:
    """The record of `name` on this chain: its address, when it was (last) deployed, and the
    genesis hash of the chain it was recorded on (None for records made before it was kept)."""
    with db.sessions() as session:
        return session.get(ChainDeployment, (chain_id, name))


def recorded_genesis(db: Database, chain_id: int, name: str) -> str | None:
    record = recorded(db, chain_id, name)
    return record.genesis_hash if record is not None else None


def _keep_genesis(db: Database, chain_id: int, name: str, genesis: str) -> None:
    with db.transaction() as session:
        session.execute(
            update(ChainDeployment)
            .where(
                ChainDeployment.chain_id == chain_id,
                ChainDeployment.name == name,
                ChainDeployment.genesis_hash.is_(None),
            )
            .values(genesis_hash=genesis)
        )


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
    refuse_deploy: str = "",
) -> str:
    """The address of `name`: configured, recorded, or deployed now (unless `refuse_deploy`
    says why it may not be: then that is the error)."""
    chain_id = int(w3.eth.chain_id)
    if configured:
        if not chain.has_code(w3, configured):
            raise ContractMissing(
                f"the configured {name} {configured} has no code on chain {chain_id}"
            )
        return Web3.to_checksum_address(configured)
    recorded = recorded_address(db, chain_id, name)
    genesis = genesis_hash(w3)
    if recorded is not None and chain.has_code(w3, recorded):
        _keep_genesis(db, chain_id, name, genesis)
        return recorded
    if recorded is not None and recorded_genesis(db, chain_id, name) == genesis:
        raise ChainBehind(
            f"{name} {recorded} is recorded on this chain (same genesis block) but the node "
            "shows no code there: it is behind or not synced; waiting instead of redeploying"
        )
    if not auto_deploy:
        raise ContractMissing(f"no {name} on chain {chain_id} and auto-deploy is off")
    if refuse_deploy:
        raise ContractMissing(refuse_deploy)
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
            session.add(
                ChainDeployment(chain_id=chain_id, name=name, address=address, genesis_hash=genesis)
            )
        else:
            session.execute(
                update(ChainDeployment)
                .where(ChainDeployment.chain_id == chain_id, ChainDeployment.name == name)
                .values(address=address, deployed_at=utcnow(), genesis_hash=genesis)
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
    admin: str = "",
    configured: str,
    auto_deploy: bool,
    data_dir: Path | None,
) -> str:
    """The EvidenceRegistry address for this chain: configured, recorded, or freshly deployed
    with `admin` (OFFERSEAL_REGISTRY_ADMIN: a cold key or multisig) administering its roles and
    `signer` (the evidence service) anchoring. Only on a local development chain does the admin
    default to the signer; elsewhere deploying without an admin is refused."""
    chain_id = int(w3.eth.chain_id)
    admin = admin or (signer.address if chain_id == DEV_CHAIN_ID else "")
    refuse = ""
    if not admin:
        refuse = (
            f"deploying the EvidenceRegistry on chain {chain_id} needs OFFERSEAL_REGISTRY_ADMIN: "
            "the address (a cold key or a multisig) that will administer its roles; the "
            "anchoring key OFFERSEAL_SIGNER_KEY only anchors"
        )
    elif Web3.to_checksum_address(admin) == signer.address and chain_id != DEV_CHAIN_ID:
        refuse = (
            "OFFERSEAL_REGISTRY_ADMIN is the anchoring key itself: choose a cold key or a "
            "multisig, so that a leaked server key cannot grant itself or others roles"
        )
    return ensure_deployed(
        db,
        w3,
        signer,
        EVIDENCE_REGISTRY,
        (Web3.to_checksum_address(admin) if admin else signer.address, signer.address),
        configured=configured,
        auto_deploy=auto_deploy,
        data_dir=data_dir,
        refuse_deploy=refuse,
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
