"""Vendor adapters, one module per vendor; each exports ``DESTINATION`` and is found by the registry."""
