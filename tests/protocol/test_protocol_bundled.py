"""Every bundled protocol loads clean and compiles to the expected graph."""

from __future__ import annotations

from pathlib import Path

import pytest
from protocol_helpers import BUNDLED

from orchestrator.protocol import bundled_dir, load_protocol
from orchestrator.protocol.graph import ActionNode, GroupNode, RepeatNode, WaitNode

PROTOCOLS = sorted(BUNDLED.glob("*.yaml"))


def test_bundled_dir_is_the_protocol_library() -> None:
    assert bundled_dir().resolve() == BUNDLED.resolve()
    assert {p.name for p in PROTOCOLS} >= {
        "ipsc-maintenance.yaml",
        "passage.yaml",
        "qc-panel.yaml",
        "msc-expansion.yaml",
    }


@pytest.mark.parametrize("path", PROTOCOLS, ids=lambda p: p.name)
def test_loads_clean(path: Path) -> None:
    graph = load_protocol(path)
    assert graph.name == path.stem and graph.steps and len(graph.content_hash) == 64
    keys = [n.key for n in graph.walk()]
    assert len(keys) == len(set(keys))
    plates = {v for n in graph.walk() if isinstance(n, ActionNode) for k, v in n.args.items() if k == "plate"}
    assert plates <= set(graph.labware)


@pytest.mark.parametrize("path", PROTOCOLS, ids=lambda p: p.name)
def test_every_realistic_number_cites_a_source(path: Path) -> None:
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if any(key in line for key in ("default: ", "volume_ul: ", "split_ratio: ", "every: ")) and any(
            c.isdigit() for c in line.split("#")[0].split(":", 1)[-1]
        ):
            assert "#" in line or "repeat:" in line, f"{path.name}:{lineno} has a number without a source"


def test_ipsc_maintenance_graph() -> None:
    graph = load_protocol(BUNDLED / "ipsc-maintenance.yaml")
    seed, day, release = graph.steps
    assert isinstance(seed, ActionNode) and seed.args == {"plate": "plate", "cells_per_well": 1.3e4, "volume_ul": 2000}
    assert isinstance(day, RepeatNode)
    assert (day.every_s, day.window_s, day.times, day.until) == (86400, 3600, 7, None)
    image, passage, feed = day.steps
    assert isinstance(image, ActionNode) and image.save == "confluence"
    assert image.on_error["timeout"].policy == "retry" and image.on_error["timeout"].retries == 2
    assert image.on_error["timeout"].then == "operator" and image.on_error["default"].policy == "operator"
    assert isinstance(passage, GroupNode) and passage.when is not None
    assert [s.key for s in passage.steps] == [
        "day.passage.dissociate",
        "day.passage.harvest",
        "day.passage.count",
        "day.passage.reseed",
    ]
    harvest = passage.steps[1]
    assert harvest.lags[0].after == "day.passage.dissociate" and (harvest.lags[0].min_s, harvest.lags[0].max_s) == (
        300,
        480,
    )
    reseed = passage.steps[3]
    assert isinstance(reseed, ActionNode) and reseed.args["split_ratio"] == 8
    assert passage.when.evaluate({"confluence": 0.8}) is True and feed.when is not None
    assert feed.when.evaluate({"confluence": 0.8}) is False
    assert isinstance(feed, ActionNode) and feed.timeout_s == 600 and feed.lags[0].max_s == 1800
    assert isinstance(release, ActionNode) and release.on_reject == "hold"
    assert [(c.field, c.op, c.value) for c in release.accept] == [
        ("viability", ">=", 0.9),
        ("viable_per_ml", ">=", 1e5),
    ]
    assert release.accept[0].check(0.95) and not release.accept[0].check(0.85)
    assert graph.labware["plate"].cell_line == "201B7" and graph.labware["plate"].cell_type == "ipsc"


def test_qc_panel_reads_within_five_minutes_of_the_reagent() -> None:
    graph = load_protocol(BUNDLED / "qc-panel.yaml")
    by_key = {n.key: n for n in graph.walk()}
    read = by_key["read_atp"]
    assert isinstance(read, ActionNode) and read.lags[0].after == "add_atp_reagent" and read.lags[0].max_s == 300
    assert isinstance(by_key["lyse"], WaitNode) and by_key["lyse"].seconds == 120
    assert by_key["add_atp_reagent"].args["reagent"] == "celltiter_glo"  # type: ignore[union-attr]
    assert by_key["environment"].args == {}  # type: ignore[union-attr]


def test_msc_expansion_feeds_every_60h_and_passages_at_85_percent() -> None:
    graph = load_protocol(BUNDLED / "msc-expansion.yaml")
    cycle = graph.steps[1]
    assert isinstance(cycle, RepeatNode) and (cycle.every_s, cycle.window_s) == (60 * 3600, 12 * 3600)
    assert graph.parameters["passage_at"] == 0.85 and graph.labware["plate"].cell_type == "msc"
    dissociate = next(n for n in graph.walk() if n.key == "cycle.passage.dissociate")
    assert dissociate.args["reagent"] == "tryple"  # type: ignore[union-attr]
