"""The Python SDK of the platform API: ``HcpClient`` (sync) and ``AsyncHcpClient`` (asyncio).

    from hcp.client import HcpClient
    with HcpClient("http://127.0.0.1:8000", token=TOKEN) as hcp:
        w = hcp.submit_workload(type="embedding", priority=5)
        for event in hcp.live():
            ...

Refusals raise the ``hcp.errors`` class of the API's ``error`` code. See docs/sdk.md.
"""

from hcp.client.aio import AsyncHcpClient
from hcp.client.live import AsyncLiveFeed, LiveFeed
from hcp.client.marketplace import (
    Balance,
    Job,
    LedgerView,
    Offer,
    Reputation,
    Settlement,
    WalletChallenge,
    WalletSession,
)
from hcp.client.models import (
    AsicResource,
    Billing,
    Embeddings,
    Event,
    Facility,
    GpuResource,
    HistoryPoint,
    InferenceUsage,
    MetricsHistory,
    ModelCard,
    Page,
    Profitability,
    Resources,
    Revenue,
    SwitchResult,
    Workload,
    WorkloadUsage,
)
from hcp.client.notary import (
    Claim,
    ClaimVerdict,
    DatasetRef,
    Miner,
    NewTask,
    NotaryTask,
    TaskRecord,
)
from hcp.client.sync import HcpClient
from hcp.client.transport import RetryPolicy

__all__ = [
    "AsicResource",
    "AsyncHcpClient",
    "AsyncLiveFeed",
    "Balance",
    "Billing",
    "Claim",
    "ClaimVerdict",
    "DatasetRef",
    "Embeddings",
    "Event",
    "Facility",
    "GpuResource",
    "HcpClient",
    "HistoryPoint",
    "InferenceUsage",
    "Job",
    "LedgerView",
    "LiveFeed",
    "MetricsHistory",
    "Miner",
    "ModelCard",
    "NewTask",
    "NotaryTask",
    "Offer",
    "Page",
    "Profitability",
    "Reputation",
    "Resources",
    "RetryPolicy",
    "Revenue",
    "Settlement",
    "SwitchResult",
    "TaskRecord",
    "WalletChallenge",
    "WalletSession",
    "Workload",
    "WorkloadUsage",
]
