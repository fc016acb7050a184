"""HTTP API: health, metrics, management (bearer token)."""
