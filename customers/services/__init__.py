"""Customer and subscription writes, one module per part."""
