"""Synthetic P&ID sheets with full ground truth (no framework imports)."""
