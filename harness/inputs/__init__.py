"""Inputs for the reference: generated Simplicity CSV exports and their uploads."""
