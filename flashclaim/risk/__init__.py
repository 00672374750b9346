"""Risk alerts (风险预警): detectors over the live claims, uses and failures."""
