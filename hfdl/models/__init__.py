"""One folder per architecture; each folder stands alone (see hfdl.layers for why)."""
