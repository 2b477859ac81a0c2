"""Fleet spec loading: shipped specs load, every bad field is reported with its location."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from hcp.config import DEFAULT_FLEET_SPEC
from hcp.errors import FleetSpecError, NotFoundError, UnknownDeviceError
from hcp.fleet.catalog import ASIC_MODELS, GPU_MODELS, find_asic, find_gpu
from hcp.fleet.spec import (
    AsicSpec,
    FleetSpec,
    GpuSpec,
    load_fleet_spec,
    parse_fleet_spec,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "fleet.gpu-cluster.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _doc(**facility_overrides: Any) -> dict[str, Any]:
    """A valid one-facility document; overrides replace facility fields."""
    facility: dict[str, Any] = {
        "name": "site",
        "location": "Somewhere",
        "capacity_mw": 1.0,
        "pue": 1.2,
        "gpus": [{"id": "g0", "model": "H100"}],
        "asics": [{"id": "a0", "model": "S21"}],
    }
    facility.update(facility_overrides)
    return {"fleet": "test", "facilities": [facility]}


def _problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(FleetSpecError) as info:
        parse_fleet_spec(data, "test")
    return {p.location: p.message for p in info.value.problems}


# --- shipped specs -----------------------------------------------------------------


def test_default_spec_loads() -> None:
    spec = load_fleet_spec(DEFAULT_FLEET_SPEC)
    assert isinstance(spec, FleetSpec)
    assert spec.name == "local"
    [lab] = spec.facilities
    assert lab.name == "local-lab"
    assert [(g.id, g.model, g.simulated) for g in spec.gpus()] == [
        ("lab-gpu-0", "H100", True),
        ("lab-gpu-1", "L40S", True),
    ]
    assert [a.id for a in spec.asics()] == ["lab-s21-0", "lab-s21-1", "lab-s19xp-0", "lab-s19xp-1"]
    assert lab.nameplate_power_w == 700 + 350 + 2 * 3500 + 2 * 3010
    assert lab.capacity_w == 10_000
    assert lab.over_nameplate  # on purpose: the optimizer has to enforce the cap


def test_example_cluster_spec_loads() -> None:
    spec = load_fleet_spec(EXAMPLE)
    tx, be = spec.facility("tx-lubbock"), spec.facility("be-brussels")
    assert [g.device_index for g in tx.gpus] == list(range(8))
    assert {g.model for g in tx.gpus} == {"H100"}
    assert len(tx.asics) == 200 and {a.model for a in tx.asics} == {"S21"}
    assert {g.model for g in be.gpus} == {"A100", "L40S"}
    assert not any(g.simulated for g in spec.gpus())
    assert not tx.over_nameplate and not be.over_nameplate
    assert tx.electricity_zone == "US-TEX-ERCO" and (tx.lat, tx.lon) == (33.58, -101.86)


def test_lookup_helpers() -> None:
    spec = load_fleet_spec(EXAMPLE)
    gpu = spec.device("tx-h100-3")
    assert isinstance(gpu, GpuSpec) and gpu.device_index == 3 and gpu.facility == "tx-lubbock"
    asic = spec.device("be-s19xp-0")
    assert isinstance(asic, AsicSpec) and asic.facility == "be-brussels"
    assert len(spec.device_ids()) == len(spec.gpus()) + len(spec.asics())
    with pytest.raises(UnknownDeviceError):
        spec.device("nope")
    with pytest.raises(NotFoundError):
        spec.facility("nope")


# --- expansion and catalog ---------------------------------------------------------


def test_count_expands_ids_and_device_indices() -> None:
    spec = parse_fleet_spec(
        _doc(
            gpus=[{"id": "n1-gpu", "model": "A100", "device_index": 4, "count": 3}],
            asics=[{"id": "rack", "model": "S21", "count": 3}],
        ),
        "test",
    )
    assert [(g.id, g.device_index) for g in spec.gpus()] == [
        ("n1-gpu-0", 4),
        ("n1-gpu-1", 5),
        ("n1-gpu-2", 6),
    ]
    assert [a.id for a in spec.asics()] == ["rack-0", "rack-1", "rack-2"]


def test_a_gpus_temperature_limit_is_the_operators_and_is_checked() -> None:
    spec = parse_fleet_spec(_doc(gpus=[{"id": "a", "model": "H100", "temperature_limit_c": 80},
                                       {"id": "b", "model": "H100"}]), "test")
    assert [g.temperature_limit_c for g in spec.gpus()] == [80.0, None]
    for bad in (0, 151, "80"):
        with pytest.raises(FleetSpecError) as err:
            parse_fleet_spec(_doc(gpus=[{"id": "a", "model": "H100", "temperature_limit_c": bad}]),
                             "test")
        assert "temperature_limit_c" in str(err.value)


def test_catalog_defaults_and_overrides() -> None:
    spec = parse_fleet_spec(
        _doc(
            gpus=[
                {"id": "a", "model": "H200"},
                {"id": "b", "model": "H100", "power_w": 350},  # power-capped
                {"id": "c", "model": "B200", "memory_gb": 192, "power_w": 1000},
            ],
            asics=[
                {"id": "s", "model": "S19j Pro"},
                {"id": "t", "model": "S21", "hashrate_ths": 210},
                {"id": "u", "model": "S23", "hashrate_ths": 318, "power_w": 3660},
            ],
        ),
        "test",
    )
    a, b, c = spec.gpus()
    h200_idle = GPU_MODELS["H200"].idle_w
    assert (a.model, a.memory_gb, a.power_w, a.idle_w) == ("H200", 141, 700, h200_idle)
    assert (b.power_w, b.memory_gb) == (350, 80)
    assert (c.model, c.memory_gb, c.power_w, c.idle_w) == ("B200", 192, 1000, pytest.approx(100))
    s, t, u = spec.asics()
    assert (s.hashrate_ths, s.power_w) == (104, 3068)
    assert (t.hashrate_ths, t.power_w) == (210, 3500)
    assert (u.model, u.hashrate_ths) == ("S23", 318)


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [("h100", "H100"), ("NVIDIA H100", "H100"), ("l40s", "L40S"), ("rtx-4090", "RTX 4090"),
     ("GeForce RTX 4090", "RTX 4090"), ("a10", "A10"), ("A100", "A100")],
)
def test_gpu_models_are_case_insensitive(spelling: str, expected: str) -> None:
    spec = parse_fleet_spec(_doc(gpus=[{"id": "g", "model": spelling}], asics=[]), "test")
    assert spec.gpus()[0].model == expected


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [("s21", "S21"), ("Antminer S19 XP", "S19 XP"), ("s19xp", "S19 XP"), ("S19J PRO", "S19j Pro"),
     ("s19 pro", "S19 Pro"), ("whatsminer m50s", "M50S")],
)
def test_asic_models_are_case_insensitive(spelling: str, expected: str) -> None:
    spec = parse_fleet_spec(_doc(gpus=[], asics=[{"id": "a", "model": spelling}]), "test")
    assert spec.asics()[0].model == expected


def test_catalog_figures() -> None:
    assert (GPU_MODELS["H100"].memory_gb, GPU_MODELS["H100"].power_w) == (80, 700)
    assert (GPU_MODELS["H200"].memory_gb, GPU_MODELS["L4"].power_w) == (141, 72)
    assert (ASIC_MODELS["S21"].hashrate_ths, ASIC_MODELS["S21"].power_w) == (200, 3500)
    assert ASIC_MODELS["S21"].efficiency_j_per_th == pytest.approx(17.5)
    assert find_gpu("B200") is None and find_asic("S99") is None
    for gpu in GPU_MODELS.values():
        assert 0 < gpu.idle_w < gpu.power_w


# --- every bad field is reported where it is -----------------------------------------


@pytest.mark.parametrize(
    ("overrides", "location", "fragment"),
    [
        ({"capacity_mw": 0}, "facilities[0].capacity_mw", "greater than 0"),
        ({"capacity_mw": "big"}, "facilities[0].capacity_mw", "valid number"),
        ({"pue": 0.9}, "facilities[0].pue", "greater than or equal to 1"),
        ({"pue": 3.5}, "facilities[0].pue", "less than or equal to 3"),
        ({"lat": 95.0}, "facilities[0].lat", "less than or equal to 90"),
        ({"name": "Bad Name"}, "facilities[0].name", "lowercase"),
        ({"colour": "blue"}, "facilities[0].colour", "unknown field"),
        ({"location": None}, "facilities[0].location", "valid string"),
        ({"gpus": {"id": "g"}}, "facilities[0].gpus", "valid list"),
        ({"gpus": ["g0"]}, "facilities[0].gpus[0]", "expected a mapping"),
        ({"gpus": [{"id": "g", "model": "H100", "power_w": -5}]}, "facilities[0].gpus[0].power_w",
         "greater than 0"),
        ({"gpus": [{"id": "g", "model": "H100", "power_w": "700"}]},
         "facilities[0].gpus[0].power_w", "plain number"),
        ({"gpus": [{"id": "g", "model": "H100", "memory_gb": 0}]},
         "facilities[0].gpus[0].memory_gb", "greater than 0"),
        ({"gpus": [{"id": "g", "model": "H100", "idle_w": 800}]}, "facilities[0].gpus[0].idle_w",
         "must not exceed power_w"),
        ({"gpus": [{"id": "g", "model": "H100", "device_index": -1}]},
         "facilities[0].gpus[0].device_index", "greater than or equal to 0"),
        ({"gpus": [{"id": "g", "model": "H100", "device_index": True}]},
         "facilities[0].gpus[0].device_index", "valid integer"),
        ({"gpus": [{"id": "g", "model": "H100", "count": 0}]}, "facilities[0].gpus[0].count",
         "greater than or equal to 1"),
        ({"gpus": [{"id": "G_0!", "model": "H100"}]}, "facilities[0].gpus[0].id", "lowercase"),
        ({"gpus": [{"id": 7, "model": "H100"}]}, "facilities[0].gpus[0].id", "valid string"),
        ({"gpus": [{"model": "H100"}]}, "facilities[0].gpus[0].id", "missing"),
        ({"gpus": [{"id": "g", "model": "H100", "vram": 80}]}, "facilities[0].gpus[0].vram",
         "unknown field"),
        ({"gpus": [{"id": "g", "model": "B200", "power_w": 1000}]},
         "facilities[0].gpus[0].memory_gb", "not in the catalog"),
        ({"asics": [{"id": "a", "model": "S99", "power_w": 3000}]},
         "facilities[0].asics[0].hashrate_ths", "not in the catalog"),
        ({"asics": [{"id": "a", "model": "S21", "hashrate_ths": 0}]},
         "facilities[0].asics[0].hashrate_ths", "greater than 0"),
        ({"asics": [{"id": "a", "model": "S21", "idle_w": 10}]}, "facilities[0].asics[0].idle_w",
         "unknown field"),
        ({"gpus": [{"id": "x" * 62, "model": "H100", "count": 2}]}, "facilities[0].gpus[0].id",
         "exceeds 63 characters"),
    ],
)
def test_bad_field_is_reported_at_its_location(
    overrides: dict[str, Any], location: str, fragment: str
) -> None:
    problems = _problems(_doc(**overrides))
    assert location in problems, problems
    assert fragment in problems[location]


def test_duplicate_device_id_after_expansion() -> None:
    problems = _problems(
        _doc(
            gpus=[{"id": "dev", "model": "H100", "count": 2}],
            asics=[{"id": "dev-1", "model": "S21"}],
        )
    )
    assert "duplicate device id 'dev-1'" in problems["facilities[0].asics[0].id"]
    assert "facilities[0].gpus[0]" in problems["facilities[0].asics[0].id"]


def test_duplicate_ids_across_facilities_and_duplicate_facility_names() -> None:
    doc = _doc()
    doc["facilities"].append(dict(doc["facilities"][0]))
    problems = _problems(doc)
    assert "duplicate facility name" in problems["facilities[1].name"]
    assert "duplicate device id 'g0'" in problems["facilities[1].gpus[0].id"]
    assert "duplicate device id 'a0'" in problems["facilities[1].asics[0].id"]


@pytest.mark.parametrize(
    ("data", "location", "fragment"),
    [
        ({"fleet": "x", "facilities": []}, "facilities", "at least one facility"),
        ({"fleet": "x"}, "facilities", "missing"),
        ({"facilities": _doc()["facilities"]}, "fleet", "missing"),
        ({**_doc(), "version": 2}, "version", "unknown field"),
        (_doc(gpus=[], asics=[]), "facilities", "no devices"),
        ({"fleet": "x", "facilities": [42]}, "facilities[0]", "expected a mapping"),
    ],
)
def test_fleet_level_problems(data: dict[str, Any], location: str, fragment: str) -> None:
    problems = _problems(data)
    assert fragment in problems[location], problems


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        fleet: local
        facilities:
          - name: lab
            location: here
            capacity_mw: -1
            pue: 7
            gpus:
              - id: g
                model: H100
                power_w: nope
              - id: g
                model: Mystery
            asics:
              - id: a
                model: S21
                count: 2
                colour: red
          - name: lab
            location: there
            capacity_mw: 1.0
            pue: 1.1
            asics:
              - id: a-1
                model: S21
        """,
    )
    with pytest.raises(FleetSpecError) as info:
        load_fleet_spec(path)
    err = info.value
    locations = [p.location for p in err.problems]
    assert set(locations) == {
        "facilities[0].capacity_mw",
        "facilities[0].pue",
        "facilities[0].gpus[0].power_w",
        "facilities[0].gpus[1].id",  # duplicate 'g', even though gpus[0] is itself broken
        "facilities[0].gpus[1].memory_gb",
        "facilities[0].gpus[1].power_w",
        "facilities[0].asics[0].colour",
        "facilities[1].name",
        "facilities[1].asics[0].id",  # 'a-1' collides with the expansion of 'a'
    }
    assert err.code == "invalid_fleet_spec" and err.http_status == 422
    assert str(path) in str(err) and "9 problem(s)" in str(err)
    assert all(f"  - {loc}:" in str(err) for loc in locations)  # the message lists each one
    assert len(err.to_dict()["problems"]) == 9


# --- file-level failures -----------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FleetSpecError, match="file not found"):
        load_fleet_spec(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("text", "location", "fragment"),
    [
        ("fleet: x\nfacilities: [\n  {name: a\n", "line 4, column 1", "YAML syntax"),
        ("fleet: x\nfleet: y\nfacilities: []\n", "line 2, column 1", "duplicate key 'fleet'"),
        ("fleet: x\n\tfacilities: []\n", "line 2, column 1", "YAML syntax"),
    ],
)
def test_yaml_syntax_errors(tmp_path: Path, text: str, location: str, fragment: str) -> None:
    with pytest.raises(FleetSpecError) as info:
        load_fleet_spec(_write(tmp_path, text))
    [problem] = info.value.problems
    assert (problem.location, fragment in problem.message) == (location, True), problem


@pytest.mark.parametrize(
    ("text", "got"), [("", "empty document"), ("- a\n- b\n", "list"), ("7\n", "int")]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    with pytest.raises(FleetSpecError, match="top level must be a mapping") as info:
        load_fleet_spec(_write(tmp_path, text))
    assert got in info.value.problems[0].message


def test_error_survives_pickling() -> None:
    import pickle

    with pytest.raises(FleetSpecError) as info:
        parse_fleet_spec({"fleet": "x", "facilities": []}, "test")
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.problems == info.value.problems


def test_every_optional_field_loads(tmp_path: Path) -> None:
    # An operator's file with every optional field set loads to the same figures.
    doc = _doc(
        electricity_zone="BE", lat=50.85, lon=4.35,
        gpus=[{"id": "g", "model": "l4", "memory_gb": 24, "power_w": 72, "idle_w": 12,
               "device_index": 0, "count": 1}],
    )
    path = tmp_path / "full.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    spec = load_fleet_spec(path)
    [gpu] = spec.gpus()
    assert (gpu.id, gpu.model, gpu.idle_w, gpu.device_index) == ("g", "L4", 12, 0)
    assert spec.facilities[0].electricity_zone == "BE"
