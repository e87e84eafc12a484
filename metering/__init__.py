"""Meters, gateways, the meter inventory and its lifecycle (readings, VEE and AMI later).

Public face: ``services`` (writes), ``selectors`` (reads), ``inventory`` (the
spreadsheet import and export), ``lifecycle`` (the inventory state machine).
"""
