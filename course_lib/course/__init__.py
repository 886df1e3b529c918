"""Course machinery under everything else: run profiles, device choice, the cache folder, and
trained models saved as checksummed artifacts or downloaded from the registry."""
