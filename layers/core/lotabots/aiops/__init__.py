"""AIOps domain (health now; log analysis, anomaly detection and forecasting come with their issue)."""
