"""Embedded data of ort (rules, demo, national-list snapshots), shipped as ``geo.data``; read it through :mod:`geo.embedded`."""
