"""Utilities kept at the import paths the seed documents use."""
