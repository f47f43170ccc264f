"""Serial dilution across the first row of a 96-well plate (OT-2, P300 single GEN2).

A typical community protocol: diluent to every well of the row, stock to the first,
then a 1:2 dilution series with mixing.
"""

from opentrons import protocol_api

metadata = {
    "protocolName": "Serial dilution (row A)",
    "author": "Example Lab <lab@example.org>",
    "description": "1:2 serial dilution across row A",
}
requirements = {"robotType": "OT-2", "apiLevel": "2.18"}


def add_parameters(parameters):
    parameters.add_int(variable_name="columns", display_name="Columns", default=8, minimum=2, maximum=12)
    parameters.add_float(variable_name="transfer_ul", display_name="Transfer volume", default=100.0,
                         minimum=10.0, maximum=150.0, unit="uL")


def run(protocol: protocol_api.ProtocolContext):
    tips = protocol.load_labware("opentrons_96_tiprack_300ul", 1)
    reservoir = protocol.load_labware("nest_12_reservoir_15ml", 2)
    plate = protocol.load_labware("nest_96_wellplate_200ul_flat", 3)
    p300 = protocol.load_instrument("p300_single_gen2", "left", tip_racks=[tips])
    row = plate.rows()[0][: protocol.params.columns]
    volume = protocol.params.transfer_ul

    p300.transfer(volume, reservoir["A1"], row, new_tip="once")
    p300.transfer(volume, reservoir["A2"], row[0], mix_after=(3, volume / 2))
    p300.transfer(volume, row[:-1], row[1:], mix_after=(3, volume / 2), new_tip="always")
