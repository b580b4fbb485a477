"""Scoring of predicted sheets against ground truth (no framework imports)."""
