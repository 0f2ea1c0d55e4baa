"""JSON Schemas of the vger config, shipped as package data (importable as ``vger.schemas``)."""
