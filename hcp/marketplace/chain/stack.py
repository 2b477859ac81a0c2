"""One call to a working chain: client, contracts, custodial keys, escrow backend, marketplace.

``open_chain()`` with no arguments starts py-evm in this process and deploys fresh contracts
(the embedded default). With ``HCP_CHAIN_RPC_URL`` it talks to that node; with
``HCP_CHAIN_DEPLOYMENT`` it binds to the contracts named in that file (deploying and writing
the file when it does not exist yet).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hcp.config import Settings
from hcp.marketplace.chain.client import ChainClient
from hcp.marketplace.chain.deploy import Contracts, Deployment, deploy_all
from hcp.marketplace.chain.escrow_backend import ChainEscrowBackend
from hcp.marketplace.chain.keys import KeyRing, Signer
from hcp.marketplace.chain.market import ChainJob, ChainMarketplace

log = logging.getLogger(__name__)


@dataclass
class ChainStack:
    client: ChainClient
    contracts: Contracts
    keys: KeyRing
    operator: Signer
    escrow: ChainEscrowBackend
    market: ChainMarketplace

    @property
    def deployment(self) -> Deployment:
        return self.contracts.deployment


def open_chain(settings: Settings | None = None, *, client: ChainClient | None = None,
               keys: KeyRing | None = None, platform_account: str = "platform") -> ChainStack:
    settings = settings or Settings()
    client = client or ChainClient.from_settings(settings)
    keys = keys or KeyRing.from_home(settings.home, settings.chain.wallet_seed)
    operator = (Signer.from_key(settings.chain.operator_key) if settings.chain.operator_key
                else client.default_signer())
    path = settings.chain.deployment
    if path is not None and path.exists():
        contracts = Contracts.bind(client, Deployment.load(path))
    else:
        contracts = deploy_all(client, operator, platform=keys.address(platform_account))
        if path is not None:
            contracts.deployment.save(path)
    escrow = ChainEscrowBackend(client, contracts, keys, operator, platform_account)
    return ChainStack(client, contracts, keys, operator, escrow, ChainMarketplace(escrow))


def run_lifecycle(stack: ChainStack, job_id: str, renter: str, resource_id: str, provider: str,
                  estimated_seconds: int = 3600, actual_seconds: int | None = None,
                  image_cid: str = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy") -> ChainJob:
    """create -> accept -> start -> complete one job (the bench hook; see docs/chain.md).

    ``actual_seconds`` pins the billed run time on dev chains by setting the completing
    block's timestamp; None bills whatever time passes.
    """
    m = stack.market
    m.create_job(job_id, renter, resource_id, image_cid, estimated_seconds)
    m.accept(job_id, provider)
    m.start(job_id, provider)
    if actual_seconds is not None:
        started = m.job(job_id).start_time
        stack.client.set_next_block_timestamp(started + max(actual_seconds, 1))
    return m.complete(job_id, provider)
