"""Includes: inlining, keys, bindings, resolution, content hash, cycles."""

from __future__ import annotations

import hashlib
from pathlib import Path

from protocol_helpers import BUNDLED, HEADER, errors_of, write

from orchestrator.protocol import load_protocol
from orchestrator.protocol.graph import ActionNode, GroupNode, RepeatNode

PLATE = "labware:\n  plate: {model: corning_6_wellplate}\n"
CHILD = """protocol: child
version: 1.0.0
title: child
parameters:
  volume: {type: float, default: 1000, max: 2000}
labware:
  dish: {model: corning_6_wellplate}
steps:
  - id: image
    do: imager.confluence
    with: {plate: dish}
    save: conf
  - id: feed
    when: conf < 0.5
    do: liquid_handler.exchange_medium
    with: {plate: dish, volume_ul: "${volume}"}
    start_within: {after: image, max: 10m}
"""


def test_include_is_inlined_as_a_group_with_prefixed_keys(tmp_path: Path) -> None:
    write(tmp_path, "child.yaml", CHILD)
    top = write(
        tmp_path,
        "top.yaml",
        HEADER
        + PLATE
        + """steps:
  - id: loop
    repeat: {times: 2}
    steps:
      - id: sub
        include: child.yaml
        with: {dish: plate, volume: 1500}
  - id: after_all
    when: conf > 0.1
    wait: 1m
    after: loop.sub.feed
""",
    )
    graph = load_protocol(top)
    loop = graph.steps[0]
    assert isinstance(loop, RepeatNode)
    sub = loop.steps[0]
    assert isinstance(sub, GroupNode) and sub.key == "loop.sub" and sub.id == "sub"
    image, feed = sub.steps
    assert isinstance(feed, ActionNode) and feed.key == "loop.sub.feed"
    assert feed.args == {"plate": "plate", "volume_ul": 1500.0, "medium": "mTeSR Plus"}
    assert feed.lags[0].after == "loop.sub.image" and feed.lags[0].max_s == 600
    assert image.location.path.endswith("child.yaml") and image.location.line == 9
    assert graph.steps[1].lags[0].after == "loop.sub.feed"
    assert graph.steps[1].when is not None and graph.steps[1].when.names == {"conf"}


def test_content_hash_covers_every_included_file_in_order(tmp_path: Path) -> None:
    child = write(tmp_path, "child.yaml", CHILD)
    top = write(
        tmp_path,
        "top.yaml",
        HEADER
        + PLATE
        + """steps:
  - {id: a, include: child.yaml, with: {dish: plate}}
  - {id: b, include: child.yaml, with: {dish: plate, volume: 500}}
""",
    )
    expected = hashlib.sha256(top.read_bytes() + child.read_bytes() + child.read_bytes()).hexdigest()
    assert load_protocol(top).content_hash == expected
    child.write_text(CHILD.replace("title: child", "title: child v2"))
    assert load_protocol(top).content_hash != expected


def test_same_name_labware_binds_by_default_and_bundled_dir_resolves(tmp_path: Path) -> None:
    top = write(tmp_path, "top.yaml", HEADER + PLATE + "steps:\n  - {id: p, include: passage.yaml}\n")
    graph = load_protocol(top)
    keys = [n.key for n in graph.walk()]
    assert keys == ["p", "p.dissociate", "p.harvest", "p.count", "p.reseed"]
    assert graph.content_hash == hashlib.sha256(top.read_bytes() + (BUNDLED / "passage.yaml").read_bytes()).hexdigest()


def test_binding_problems_are_reported_at_the_include(tmp_path: Path) -> None:
    write(tmp_path, "child.yaml", CHILD)
    top = write(
        tmp_path,
        "top.yaml",
        HEADER
        + PLATE
        + """steps:
  - id: sub
    include: child.yaml
    with: {volume: 5000, colour: red}
""",
    )
    messages = [(e.location.line, e.location.col, e.message) for e in errors_of(top)]
    unbound = "step 'sub': labware 'dish' of child.yaml is not bound; add with: {dish: <labware>} (declared: plate)"
    assert (8, 14, unbound) in messages
    assert any(line == 9 and col == 20 and "5000 is above the maximum 2000" in m for line, col, m in messages)
    assert any(line == 9 and col == 26 and "has no labware or parameter 'colour'" in m for line, col, m in messages)


def test_errors_inside_an_included_file_are_located_there(tmp_path: Path) -> None:
    write(tmp_path, "child.yaml", CHILD.replace("imager.confluence", "imager.confluense"))
    top = write(
        tmp_path, "top.yaml", HEADER + PLATE + "steps:\n  - {id: sub, include: child.yaml, with: {dish: plate}}\n"
    )
    errors = errors_of(top)
    assert [(Path(e.location.path).name, e.location.line, e.location.col) for e in errors] == [("child.yaml", 10, 9)]
    assert "step 'sub.image': do: unknown action 'imager.confluense'" in errors[0].message


def test_self_include_is_circular(tmp_path: Path) -> None:
    top = write(tmp_path, "top.yaml", HEADER + PLATE + "steps:\n  - {id: me, include: top.yaml}\n")
    (error,) = errors_of(top)
    assert "circular include:" in error.message and error.message.count("top.yaml") == 2


def test_missing_include_lists_where_it_looked(tmp_path: Path) -> None:
    top = write(tmp_path, "top.yaml", HEADER + PLATE + "steps:\n  - {id: p, include: nothere.yaml}\n")
    (error,) = errors_of(top)
    assert (error.location.line, error.location.col) == (7, 22)
    assert "file 'nothere.yaml' not found (looked in" in error.message
