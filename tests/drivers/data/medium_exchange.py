# Medium exchange on a 24-well plate -- written for the lab's OT-2, not for cellwright.
from opentrons import protocol_api

metadata = {"protocolName": "24-well medium exchange", "author": "Cell culture core", "apiLevel": "2.15"}


def run(ctx: protocol_api.ProtocolContext):
    tips = [ctx.load_labware("opentrons_96_tiprack_1000ul", s) for s in (1, 4)]
    plate = ctx.load_labware("corning_24_wellplate_3.4ml_flat", 2)
    medium = ctx.load_labware("nest_1_reservoir_195ml", 3)
    waste = ctx.load_labware("agilent_1_reservoir_290ml", 6)
    p1000 = ctx.load_instrument("p1000_single_gen2", "right", tip_racks=tips)

    for well in plate.wells():
        p1000.pick_up_tip()
        p1000.aspirate(800, well.bottom(1), rate=0.5)
        p1000.dispense(800, waste["A1"].top())
        p1000.drop_tip()

    p1000.pick_up_tip()
    for well in plate.wells():
        p1000.aspirate(500, medium["A1"])
        p1000.dispense(500, well.top(-2), rate=0.5)
    p1000.drop_tip()
    ctx.delay(seconds=30, msg="let the medium settle")
