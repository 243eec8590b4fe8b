"""Segment's message model: parsing, validation and normalisation of Tracking API calls."""
