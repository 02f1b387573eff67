"""HTTP API: one module per resource; `common` holds what they all need."""
