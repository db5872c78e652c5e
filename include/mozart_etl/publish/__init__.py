"""Publish: copy a tenant's marts to the APS operational PostgreSQL, atomically."""
