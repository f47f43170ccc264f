"""cellwright culture operations for an OT-2 (one protocol, chosen by runtime parameters).

Deck: 1000 µL tips in slots 1 and 4, the culture plate in slot 2, a NEST 12-column
reservoir in slot 3 (columns = media / reagents / cell suspension), the collection
trough in slot 5, the waste trough in slot 6. A P1000 single-channel GEN2 on the left.
"""

from opentrons import protocol_api

metadata = {"protocolName": "cellwright culture operation", "author": "cellwright"}
requirements = {"robotType": "OT-2", "apiLevel": "2.18"}

PLATES = {6: "corning_6_wellplate_16.8ml_flat", 12: "corning_12_wellplate_6.9ml_flat",
          24: "corning_24_wellplate_3.4ml_flat", 96: "corning_96_wellplate_360ul_flat"}


def add_parameters(parameters):
    parameters.add_str(variable_name="operation", display_name="Operation", default="exchange_medium",
                       choices=[{"display_name": n, "value": n} for n in
                                ("seed", "exchange_medium", "dissociate", "harvest", "reseed", "add_reagent")])
    parameters.add_float(variable_name="volume_ul", display_name="Volume per well", default=1500.0,
                         minimum=1.0, maximum=3000.0, unit="uL")
    parameters.add_int(variable_name="wells", display_name="Wells", default=6,
                       choices=[{"display_name": str(n), "value": n} for n in PLATES])
    parameters.add_int(variable_name="source", display_name="Reservoir column", default=1, minimum=1, maximum=12)
    parameters.add_int(variable_name="medium", display_name="Medium column", default=1, minimum=1, maximum=12)
    parameters.add_float(variable_name="split_ratio", display_name="Split ratio", default=6.0, minimum=1.0,
                         maximum=50.0)


def run(protocol: protocol_api.ProtocolContext):
    p = protocol.params
    tips = [protocol.load_labware("opentrons_96_tiprack_1000ul", slot) for slot in (1, 4)]
    plate = protocol.load_labware(PLATES[p.wells], 2)
    reservoir = protocol.load_labware("nest_12_reservoir_15ml", 3)
    collection = protocol.load_labware("nest_1_reservoir_195ml", 5)
    waste = protocol.load_labware("agilent_1_reservoir_290ml", 6)
    pipette = protocol.load_instrument("p1000_single_gen2", "left", tip_racks=tips)
    wells = plate.wells()
    source = reservoir.wells()[p.source - 1]
    medium = reservoir.wells()[p.medium - 1]

    def empty_each():
        for well in wells:
            pipette.transfer(p.volume_ul, well.bottom(1), waste["A1"].top(), new_tip="always")

    def fill_each(src, volume):
        pipette.transfer(volume, src, [w.top(-2) for w in wells], new_tip="once")

    if p.operation == "seed":
        fill_each(source, p.volume_ul)
    elif p.operation in ("exchange_medium", "dissociate"):
        empty_each()
        fill_each(source, p.volume_ul)
    elif p.operation == "add_reagent":
        fill_each(source, p.volume_ul)
    elif p.operation == "harvest":
        fill_each(medium, p.volume_ul)
        pipette.consolidate(2 * p.volume_ul, [w.bottom(1) for w in wells], collection["A1"])
    else:  # reseed
        share = min(p.volume_ul, 2 * p.volume_ul / p.split_ratio)
        pipette.distribute(share, collection["A1"], [w.top(-2) for w in wells])
        fill_each(medium, p.volume_ul - share)
    protocol.comment(f"{p.operation} done on {len(wells)} wells")
