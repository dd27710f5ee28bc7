"""Rate limits, plans and quotas on the `limits` library (config, storage, engine)."""
