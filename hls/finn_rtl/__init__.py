"""Adapters that put FINN's RTL layers (Thresholding, FIFO, data-width converter) under the kernel contract."""
