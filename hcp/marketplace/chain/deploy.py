"""Deploy the five contracts wired together, and bind to an existing deployment."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hcp.errors import ConfigError
from hcp.marketplace.chain.artifacts import load_artifact
from hcp.marketplace.chain.client import ChainClient
from hcp.marketplace.chain.keys import Signer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deployment:
    """Addresses of one wired set of contracts (saved as JSON: ``HCP_CHAIN_DEPLOYMENT``)."""

    chain_id: int
    token: str
    registry: str
    reputation: str
    escrow: str
    marketplace: str
    platform: str
    operator: str
    block: int  # first block of the deployment: where an indexer starts

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot read chain deployment {path}: {exc}") from None

    def addresses(self) -> dict[str, str]:
        return {"GPUToken": self.token, "ResourceRegistry": self.registry,
                "ReputationSystem": self.reputation, "PaymentEscrow": self.escrow,
                "Marketplace": self.marketplace}


@dataclass(frozen=True)
class Contracts:
    """web3 contract objects of one deployment."""

    deployment: Deployment
    token: Any
    registry: Any
    reputation: Any
    escrow: Any
    marketplace: Any

    @classmethod
    def bind(cls, client: ChainClient, deployment: Deployment) -> Contracts:
        if client.chain_id != deployment.chain_id:
            raise ConfigError(f"deployment is for chain {deployment.chain_id}, node is {client.chain_id}")

        def c(name: str, address: str) -> Any:
            return client.contract(address, load_artifact(name).abi)

        return cls(deployment, c("GPUToken", deployment.token), c("ResourceRegistry", deployment.registry),
                   c("ReputationSystem", deployment.reputation), c("PaymentEscrow", deployment.escrow),
                   c("Marketplace", deployment.marketplace))

    def by_address(self) -> dict[str, Any]:
        return {c.address: c for c in (self.token, self.registry, self.reputation, self.escrow,
                                         self.marketplace)}


def deploy_all(client: ChainClient, operator: Signer, platform: str,
               oracles: tuple[str, ...] = ()) -> Contracts:
    """Deploy and wire: the operator owns everything, mints, and is an oracle (plus ``oracles``)."""
    start = client.block_number()

    def dep(name: str, *args: Any) -> str:
        art = load_artifact(name)
        return client.deploy(art.abi, art.bytecode, operator, *args)

    token = dep("GPUToken", operator.address)
    registry = dep("ResourceRegistry", operator.address)
    reputation = dep("ReputationSystem", operator.address, registry)
    escrow = dep("PaymentEscrow", operator.address, token, platform)
    marketplace = dep("Marketplace", operator.address, token, registry, escrow, reputation)
    d = Deployment(chain_id=client.chain_id, token=token, registry=registry, reputation=reputation,
                   escrow=escrow, marketplace=marketplace, platform=platform,
                   operator=operator.address, block=start + 1)
    cs = Contracts.bind(client, d)
    client.transact(cs.token.functions.setMinter(operator.address, True), operator)
    client.transact(cs.token.functions.setEscrowRoute(escrow, marketplace), operator)
    client.transact(cs.escrow.functions.setMarketplace(marketplace), operator)
    client.transact(cs.registry.functions.setWiring(marketplace, reputation), operator)
    client.transact(cs.reputation.functions.setMarketplace(marketplace), operator)
    for oracle in (operator.address, *oracles):
        client.transact(cs.marketplace.functions.setOracle(oracle, True), operator)
        client.transact(cs.reputation.functions.setOracle(oracle, True), operator)
    log.info("deployed hcp contracts on chain %s: marketplace %s", d.chain_id, marketplace)
    return cs
