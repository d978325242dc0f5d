"""Helpers for offline tests: tiny random-weight Stable Diffusion models built from configs."""
