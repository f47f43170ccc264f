"""plr.liquid_handler: our actions as pipetting plans on pylabrobot with tracking on."""

from __future__ import annotations

import pytest

from drivers.errors import ChannelError, StateError
from drivers.plr import LIQUID_HANDLER
from drivers.plr.liquid_handler import PLRLiquidHandler, PLRLiquidHandlerConfig
from drivers.spec import DriverContext


def volumes(lh, plate_id):
    """Per-well volumes in our row-major order (A1, A2, A3, B1...)."""
    resource = lh._plates[plate_id]
    return [resource.get_well(n).tracker.get_used_volume() for n in ("A1", "A2", "A3", "B1", "B2", "B3")]


def trough(lh, n):
    return lh.layout.reservoir.get_well(n - 1).tracker.get_used_volume()


@pytest.mark.parametrize("backend", ["chatterbox", "star_chatterbox", "ot2_simulator"])
def test_passage_cycle_tracks_every_microlitre(backend, plate, vclock):
    lh = PLRLiquidHandler("lh", vclock, PLRLiquidHandlerConfig(backend=backend))

    async def main():
        from pylabrobot.resources import does_tip_tracking, does_volume_tracking

        await lh.connect()
        assert does_volume_tracking() and does_tip_tracking()
        medium0, tips0 = trough(lh, 1), lh.layout.free_tips()
        t0 = vclock.now()
        await lh.seed(plate, 1.3e4, 1500)
        assert vclock.now() - t0 == pytest.approx(lh.duration_of("seed", plate=plate, cells_per_well=1, volume_ul=1500),
                                                  rel=0.5)
        await lh.exchange_medium(plate, 1500)
        assert volumes(lh, "P1") == [1500.0] * 6
        assert trough(lh, 1) == pytest.approx(medium0 - 9000)
        assert lh.layout.waste.get_well(0).tracker.get_used_volume() == pytest.approx(9000)
        await lh.dissociate(plate, 1000)
        await lh.harvest(plate, 1000)
        assert volumes(lh, "P1") == [0.0] * 6
        assert lh.layout.collection.get_well(0).tracker.get_used_volume() == pytest.approx(12000)
        await lh.reseed(plate, 6, 1500)
        assert volumes(lh, "P1") == pytest.approx([1500.0] * 6)
        assert lh.layout.collection.get_well(0).tracker.get_used_volume() == pytest.approx(0, abs=1e-6)
        used = tips0 - lh.layout.free_tips()
        await lh.disconnect()
        return used

    # seed 1 + exchange 6+1 + dissociate 6+1 + harvest 1 + reseed 3
    assert vclock.run(main) == 19


def test_impossible_calls_are_refused_before_anything_moves(plate, vclock):
    lh = PLRLiquidHandler("lh", vclock, PLRLiquidHandlerConfig(fill_ul={"accutase": 500}))

    async def main():
        await lh.connect()
        await lh.seed(plate, 1e4, 1500)
        before = (volumes(lh, "P1"), trough(lh, 2), lh.layout.free_tips(), vclock.now())
        with pytest.raises(StateError, match="short of"):
            await lh.dissociate(plate, 1000)  # 6 mL of accutase needed, 0.5 mL in the trough
        with pytest.raises(StateError, match="overflow"):
            await lh.add_reagent(plate, "celltiter_glo", 16000)
        with pytest.raises(StateError, match="no trough"):
            await lh.add_reagent(plate, "trypan blue", 10)
        with pytest.raises(StateError, match="harvest before"):
            await lh.reseed(plate, 4, 1500)
        after = (volumes(lh, "P1"), trough(lh, 2), lh.layout.free_tips(), vclock.now())
        lh.layout.tip_racks[0].empty()
        lh.layout.tip_racks[1].empty()
        with pytest.raises(StateError, match="tips"):
            await lh.exchange_medium(plate, 1500)
        lh.replace_tips()
        await lh.exchange_medium(plate, 1500)
        await lh.disconnect()
        return before, after

    before, after = vclock.run(main)
    assert before == after


def test_a_failure_halfway_commits_what_the_hardware_did(plate, vclock):
    lh = PLRLiquidHandler("lh", vclock, PLRLiquidHandlerConfig())
    calls = {"n": 0}
    real = lh.lh.backend.dispense

    async def flaky(ops, use_channels, **kw):
        calls["n"] += 1
        if calls["n"] == 4:
            from pylabrobot.liquid_handling.errors import ChannelizedError

            raise ChannelizedError(errors={0: RuntimeError("clot detected")})
        return await real(ops, use_channels, **kw)

    async def main():
        await lh.connect()
        lh.lh.backend.dispense = flaky
        with pytest.raises(ChannelError) as info:
            await lh.seed(plate, 1e4, 1000)
        status = await lh.status()
        mounted = any(t.has_tip for t in lh.lh.head.values())
        await lh.disconnect()
        return info.value, status, mounted

    exc, status, mounted = vclock.run(main)
    # 3 wells dispensed and committed; the 4th rolled back; the tip was discarded
    assert volumes(lh, "P1") == [1000.0, 1000.0, 1000.0, 0.0, 0.0, 0.0]
    assert "3/6 wells done" in exc.detail and "clot detected" in exc.detail and exc.recoverable
    assert status.state == "idle" and not mounted
    # 4 aspirations succeeded: 3 reached wells, the 4th went to the trash with the discarded tip
    assert trough(lh, 3) == pytest.approx(0.9 * 75000 - 4000)


def test_tracking_switches_are_restored(vclock):
    from pylabrobot.resources import does_volume_tracking, set_volume_tracking

    set_volume_tracking(False)
    lh = PLRLiquidHandler("lh", vclock, PLRLiquidHandlerConfig())

    async def main():
        await lh.connect()
        on = does_volume_tracking()
        await lh.disconnect()
        return on

    assert vclock.run(main) is True and does_volume_tracking() is False


def test_emulator_mode_keeps_the_culture_in_step(plate, vclock):
    ctx = DriverContext("lh", vclock)
    lh = LIQUID_HANDLER.build("emulator", LIQUID_HANDLER.parse_config({"backend": "star"}), ctx)
    culture = ctx.shared["culture"]

    async def main():
        await lh.connect()
        with pytest.raises(StateError):
            await lh.seed(plate, 1e4, 1500)  # not on the deck
        culture.place(plate, "lh")
        await lh.seed(plate, 1.3e4, 1500)
        await lh.disconnect()

    vclock.run(main)
    assert type(lh.inner.lh.backend).__name__ == "STARChatterboxBackend"
    assert culture.snapshot(plate)["phase"] == "attached"
