"""Streaming max-pool on activation bits (``BinaryMaxPool``): reference, op, rewrite, RTL, cost model."""
