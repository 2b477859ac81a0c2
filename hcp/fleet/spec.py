"""The fleet spec: which facilities exist and which GPUs and ASICs each one holds.

A YAML file is checked against strict pydantic models (no extra keys, no silent
type coercion; see ``hcp.fleet.spec_schema``), catalog figures fill what the
operator left out, ``count`` expands into individual devices, and the result is
a tree of frozen dataclasses the rest of the platform reads. Every problem in a
file is collected and raised as one ``FleetSpecError`` so an operator fixes a
spec in one pass, not one error per run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from hcp.errors import FieldProblem, FleetSpecError, NotFoundError, UnknownDeviceError
from hcp.fleet.catalog import ASIC_MODELS, GPU_MODELS, find_asic, find_gpu
from hcp.fleet.spec_schema import (
    ID_MAX_LEN,
    ID_RE,
    MAX_COUNT,
    AsicDoc,
    FacilityDoc,
    FleetDoc,
    GpuDoc,
    ProblemCollector,
    read_yaml,
)

logger = logging.getLogger(__name__)

# Unknown GPU models without an idle figure idle at this share of board power,
# the typical ratio of the data-centre parts in the catalog.
DEFAULT_IDLE_SHARE = 0.10


# --- result objects -------------------------------------------------------------


@dataclass(frozen=True)
class GpuSpec:
    id: str
    facility: str
    model: str
    memory_gb: float
    power_w: float
    idle_w: float
    device_index: int | None = None  # CUDA index on its node; None = simulated, CPU-backed
    # The operator's limit (°C); None: NVML's slowdown threshold on a real GPU, none simulated.
    temperature_limit_c: float | None = None

    @property
    def simulated(self) -> bool:
        return self.device_index is None


@dataclass(frozen=True)
class AsicSpec:
    id: str
    facility: str
    model: str
    hashrate_ths: float
    power_w: float

    @property
    def efficiency_j_per_th(self) -> float:
        return self.power_w / self.hashrate_ths


@dataclass(frozen=True)
class FacilitySpec:
    name: str
    location: str
    capacity_mw: float
    pue: float
    electricity_zone: str | None
    gpus: tuple[GpuSpec, ...]
    asics: tuple[AsicSpec, ...]
    lat: float | None = None
    lon: float | None = None

    @property
    def capacity_w(self) -> float:
        return self.capacity_mw * 1_000_000

    @property
    def nameplate_power_w(self) -> float:
        """IT power with every device at full board power (cooling not included)."""
        return sum(g.power_w for g in self.gpus) + sum(a.power_w for a in self.asics)

    @property
    def nameplate_facility_power_w(self) -> float:
        """Grid draw at nameplate: IT power times PUE, comparable to ``capacity_w``."""
        return self.nameplate_power_w * self.pue

    @property
    def over_nameplate(self) -> bool:
        """True when everything running flat out would exceed the site's capacity.

        Allowed (sites are routinely over-provisioned); the optimizer keeps the
        actual draw under ``capacity_w``.
        """
        return self.nameplate_facility_power_w > self.capacity_w


@dataclass(frozen=True)
class FleetSpec:
    name: str
    facilities: tuple[FacilitySpec, ...]
    source: str = ""  # the file it was loaded from, for messages

    @cached_property
    def _devices(self) -> Mapping[str, GpuSpec | AsicSpec]:
        # Built once on first lookup; a fleet may hold tens of thousands of ASICs.
        index: dict[str, GpuSpec | AsicSpec] = {}
        for fac in self.facilities:
            index.update((g.id, g) for g in fac.gpus)
            index.update((a.id, a) for a in fac.asics)
        return index

    def gpus(self) -> tuple[GpuSpec, ...]:
        return tuple(g for fac in self.facilities for g in fac.gpus)

    def asics(self) -> tuple[AsicSpec, ...]:
        return tuple(a for fac in self.facilities for a in fac.asics)

    def device_ids(self) -> tuple[str, ...]:
        return tuple(self._devices)

    def facility(self, name: str) -> FacilitySpec:
        for fac in self.facilities:
            if fac.name == name:
                return fac
        raise NotFoundError(f"unknown facility {name!r}", facility=name)

    def device(self, device_id: str) -> GpuSpec | AsicSpec:
        try:
            return self._devices[device_id]
        except KeyError:
            raise UnknownDeviceError(f"unknown device {device_id!r}", device_id=device_id) from None


def load_fleet_spec(path: str | Path) -> FleetSpec:
    """Read, validate and expand a fleet spec YAML file."""
    path = Path(path).expanduser()
    return parse_fleet_spec(read_yaml(path), str(path))


def parse_fleet_spec(data: dict[str, Any], source: str = "<data>") -> FleetSpec:
    """Validate an already-parsed fleet spec document; raises one FleetSpecError."""
    if not isinstance(data, dict):
        got = "an empty document" if data is None else f"a {type(data).__name__}"
        message = f"expected a mapping with 'fleet' and 'facilities', got {got}"
        raise FleetSpecError(
            f"invalid fleet spec {source}: the top level must be a mapping",
            [FieldProblem("(root)", message, data)],
        )
    parser = _Parser()
    fleet_doc = parser.validate(FleetDoc, data, "")
    facilities = parser.facilities(data.get("facilities"))
    if parser.problems or fleet_doc is None:
        count = len(parser.problems)
        raise FleetSpecError(f"invalid fleet spec {source}: {count} problem(s)", parser.problems)
    spec = FleetSpec(name=fleet_doc.fleet, facilities=tuple(facilities), source=source)
    _log_loaded(spec)
    return spec


class _Parser(ProblemCollector):
    """One pass over a document that keeps going after a problem, collecting them all.

    Names, ids and devices are checked even when sibling fields are broken, so
    one run reports everything wrong with a file.
    """

    def __init__(self) -> None:
        super().__init__()
        self._facility_names: dict[str, str] = {}  # name -> where first defined
        self._device_ids: dict[str, str] = {}  # id -> where first defined


    def facilities(self, raw: Any) -> list[FacilitySpec]:
        if not isinstance(raw, list):
            return []  # missing or not a list: reported by FleetDoc
        if not raw:
            self.problem("facilities", "at least one facility is required", raw)
        out = [
            fac
            for i, entry in enumerate(raw)
            if self.is_mapping(entry, f"facilities[{i}]", "a facility")
            and (fac := self._facility(entry, f"facilities[{i}]")) is not None
        ]
        if out and not self.problems and not any(f.gpus or f.asics for f in out):
            self.problem("facilities", "the fleet has no devices: add gpus or asics")
        return out

    def _facility(self, raw: dict[str, Any], loc: str) -> FacilitySpec | None:
        doc = self.validate(FacilityDoc, raw, loc)
        name = raw.get("name") if isinstance(raw.get("name"), str) else ""
        if name in self._facility_names:
            first = self._facility_names[name]
            self.problem(f"{loc}.name", f"duplicate facility name (also at {first})", name)
        elif name:
            self._facility_names[name] = loc
        gpus = [
            gpu
            for j, entry in enumerate(_entries(raw, "gpus"))
            if self.is_mapping(entry, f"{loc}.gpus[{j}]", "a GPU")
            for gpu in self._gpus(entry, f"{loc}.gpus[{j}]", name)
        ]
        asics = [
            asic
            for j, entry in enumerate(_entries(raw, "asics"))
            if self.is_mapping(entry, f"{loc}.asics[{j}]", "an ASIC")
            for asic in self._asics(entry, f"{loc}.asics[{j}]", name)
        ]
        if doc is None:
            return None
        return FacilitySpec(
            name=doc.name,
            location=doc.location,
            capacity_mw=doc.capacity_mw,
            pue=doc.pue,
            electricity_zone=doc.electricity_zone,
            gpus=tuple(gpus),
            asics=tuple(asics),
            lat=doc.lat,
            lon=doc.lon,
        )

    def _gpus(self, raw: dict[str, Any], loc: str, facility: str) -> list[GpuSpec]:
        ids = self._ids(raw, loc)
        doc = self.validate(GpuDoc, raw, loc)
        if doc is None:
            return []
        cat = find_gpu(doc.model)
        if cat is None and not self._has_figures(doc, ("memory_gb", "power_w"), loc, GPU_MODELS):
            return []
        memory_gb = _figure(doc.memory_gb, cat.memory_gb if cat else None)
        power_w = _figure(doc.power_w, cat.power_w if cat else None)
        if doc.idle_w is None:
            # A power-capped board may be configured below the catalog idle figure.
            idle_w = min(cat.idle_w if cat else power_w * DEFAULT_IDLE_SHARE, power_w)
        elif doc.idle_w > power_w:
            self.problem(f"{loc}.idle_w", f"must not exceed power_w ({power_w:g} W)", doc.idle_w)
            return []
        else:
            idle_w = doc.idle_w
        return [
            GpuSpec(
                id=device_id,
                facility=facility,
                model=cat.name if cat else doc.model,
                memory_gb=memory_gb,
                power_w=power_w,
                idle_w=float(idle_w),
                # count > 1 with an index means consecutive CUDA indices on one node.
                device_index=None if doc.device_index is None else doc.device_index + k,
                temperature_limit_c=doc.temperature_limit_c,
            )
            for k, device_id in enumerate(ids)
        ]

    def _asics(self, raw: dict[str, Any], loc: str, facility: str) -> list[AsicSpec]:
        ids = self._ids(raw, loc)
        doc = self.validate(AsicDoc, raw, loc)
        if doc is None:
            return []
        cat = find_asic(doc.model)
        figures = ("hashrate_ths", "power_w")
        if cat is None and not self._has_figures(doc, figures, loc, ASIC_MODELS):
            return []
        hashrate = _figure(doc.hashrate_ths, cat.hashrate_ths if cat else None)
        power_w = _figure(doc.power_w, cat.power_w if cat else None)
        model = cat.name if cat else doc.model
        return [
            AsicSpec(id=d, facility=facility, model=model, hashrate_ths=hashrate, power_w=power_w)
            for d in ids
        ]

    def _ids(self, raw: dict[str, Any], loc: str) -> list[str]:
        """An entry's expanded ids, each checked for length and fleet-wide uniqueness.

        Read from the raw mapping so that an entry with other bad fields still
        takes part in the uniqueness check.
        """
        base, count = raw.get("id"), raw.get("count", 1)
        if not isinstance(base, str) or not ID_RE.match(base):
            return []  # reported by GpuDoc/AsicDoc
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            count = 1  # reported by GpuDoc/AsicDoc
        ids = [base] if count == 1 else [f"{base}-{k}" for k in range(count)]
        too_long = [d for d in ids if not ID_RE.match(d)]
        if too_long:
            longest = too_long[-1]
            message = f"expanded id {longest!r} exceeds {ID_MAX_LEN} characters"
            self.problem(f"{loc}.id", message, base)
        dupes = [d for d in ids if d in self._device_ids]
        if dupes:
            shown = ", ".join(repr(d) for d in dupes[:3])
            if len(dupes) > 3:
                shown += f" and {len(dupes) - 3} more"
            first = self._device_ids[dupes[0]]
            self.problem(f"{loc}.id", f"duplicate device id {shown} (also at {first})", base)
        for d in ids:
            self._device_ids.setdefault(d, loc)
        return ids

    def _has_figures(
        self, doc: GpuDoc | AsicDoc, names: tuple[str, ...], loc: str, known: Mapping[str, object]
    ) -> bool:
        """An off-catalog model must state its own figures; reports each one missing."""
        missing = [name for name in names if getattr(doc, name) is None]
        catalog = ", ".join(sorted(known))
        message = f"required: model {doc.model!r} is not in the catalog (known: {catalog})"
        for name in missing:
            self.problem(f"{loc}.{name}", message)
        return not missing



def _entries(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    return value if isinstance(value, list) else []  # a non-list was reported by FacilityDoc


def _figure(override: float | None, catalog: float | None) -> float:
    value = override if override is not None else catalog
    assert value is not None, "guaranteed by _has_figures"
    return float(value)



def _log_loaded(spec: FleetSpec) -> None:
    logger.info(
        "fleet spec %s (%s): %d facilities, %d GPUs, %d ASICs",
        spec.name, spec.source, len(spec.facilities), len(spec.gpus()), len(spec.asics()),
    )
    for fac in spec.facilities:
        if fac.over_nameplate:  # normal for over-provisioned sites, so not a warning
            logger.info(
                "facility %s: nameplate draw %.1f kW (IT x PUE %.2f) exceeds capacity %.1f kW; "
                "the optimizer will cap it",
                fac.name, fac.nameplate_facility_power_w / 1000, fac.pue, fac.capacity_w / 1000,
            )
