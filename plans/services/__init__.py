"""Catalog writes, one module per part of the catalog."""
