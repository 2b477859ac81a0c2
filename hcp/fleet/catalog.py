"""Known GPU and mining-ASIC models and their public spec-sheet figures.

A fleet spec names a model; the catalog supplies its memory, power and hashrate
so operators only write overrides. Figures are the vendors' published numbers:

- NVIDIA data sheets: H100 SXM5 (80 GB HBM3, up to 700 W), H200 SXM (141 GB
  HBM3e, up to 700 W), A100 80GB SXM (80 GB HBM2e, 400 W), L40S (48 GB GDDR6,
  350 W), L4 (24 GB GDDR6, 72 W), A10 (24 GB GDDR6, 150 W); GeForce RTX 4090
  product page (24 GB GDDR6X, 450 W total graphics power).
- Bitmain Antminer spec sheets: S21 (200 TH/s, 3,500 W, 17.5 J/TH), S19 XP
  (140 TH/s, 3,010 W, 21.5 J/TH), S19j Pro (104 TH/s, 3,068 W, 29.5 J/TH),
  S19 Pro (110 TH/s, 3,250 W, 29.5 J/TH); MicroBT Whatsminer M50S (126 TH/s,
  3,276 W, 26 J/TH).

Vendors do not publish idle power. The ``idle_w`` figures are typical
``nvidia-smi`` readings of an idle, clocks-unlocked board (about 10 % of board
power for data-centre parts) and are labelled as estimates; a fleet spec may
override them with measured values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuModel:
    """One GPU model's catalog figures."""

    name: str
    memory_gb: float
    power_w: float  # board power / TDP from the data sheet
    idle_w: float  # estimate; see module docstring
    vendor: str = "NVIDIA"


@dataclass(frozen=True)
class AsicModel:
    """One SHA-256 mining ASIC's catalog figures."""

    name: str
    hashrate_ths: float
    power_w: float
    vendor: str

    @property
    def efficiency_j_per_th(self) -> float:
        """Joules per terahash: the number miners compare machines by."""
        return self.power_w / self.hashrate_ths


_GPUS: tuple[GpuModel, ...] = (
    GpuModel("H100", memory_gb=80, power_w=700, idle_w=70),
    GpuModel("H200", memory_gb=141, power_w=700, idle_w=75),
    GpuModel("A100", memory_gb=80, power_w=400, idle_w=50),
    GpuModel("L40S", memory_gb=48, power_w=350, idle_w=35),
    GpuModel("L4", memory_gb=24, power_w=72, idle_w=16),
    GpuModel("RTX 4090", memory_gb=24, power_w=450, idle_w=25),
    GpuModel("A10", memory_gb=24, power_w=150, idle_w=20),
)

_ASICS: tuple[AsicModel, ...] = (
    AsicModel("S21", hashrate_ths=200, power_w=3500, vendor="Bitmain"),
    AsicModel("S19 XP", hashrate_ths=140, power_w=3010, vendor="Bitmain"),
    AsicModel("S19j Pro", hashrate_ths=104, power_w=3068, vendor="Bitmain"),
    AsicModel("S19 Pro", hashrate_ths=110, power_w=3250, vendor="Bitmain"),
    AsicModel("M50S", hashrate_ths=126, power_w=3276, vendor="MicroBT"),
)

# Vendor and product-line words people put in front of a model name; dropping
# them lets "NVIDIA H100", "GeForce RTX 4090" and "Antminer S21" all resolve.
_PREFIXES: tuple[str, ...] = ("nvidia", "geforce", "bitmain", "antminer", "microbt", "whatsminer")

# Common spellings of a variant that share the catalog figures.
_ALIASES: dict[str, str] = {
    "h100sxm": "H100",
    "h100sxm5": "H100",
    "h200sxm": "H200",
    "a10080gb": "A100",
    "a100sxm": "A100",
    "4090": "RTX 4090",
}


def model_key(name: str) -> str:
    """Case-, space- and punctuation-insensitive lookup key of a model name."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    changed = True
    while changed:  # "nvidia geforce rtx 4090" carries two prefixes
        changed = False
        for prefix in _PREFIXES:
            if key.startswith(prefix) and len(key) > len(prefix):
                key = key[len(prefix) :]
                changed = True
    return key


_GPU_INDEX: dict[str, GpuModel] = {model_key(m.name): m for m in _GPUS}
_ASIC_INDEX: dict[str, AsicModel] = {model_key(m.name): m for m in _ASICS}
for _alias, _target in _ALIASES.items():
    _GPU_INDEX.setdefault(_alias, _GPU_INDEX[model_key(_target)])

GPU_MODELS: Mapping[str, GpuModel] = MappingProxyType({m.name: m for m in _GPUS})
ASIC_MODELS: Mapping[str, AsicModel] = MappingProxyType({m.name: m for m in _ASICS})


def find_gpu(name: str) -> GpuModel | None:
    """The catalog GPU a (loosely spelled) model name refers to, or None."""
    return _GPU_INDEX.get(model_key(name))


def find_asic(name: str) -> AsicModel | None:
    """The catalog ASIC a (loosely spelled) model name refers to, or None."""
    return _ASIC_INDEX.get(model_key(name))
