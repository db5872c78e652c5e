"""The demo tenant's deterministic MES source (see `generate`)."""
