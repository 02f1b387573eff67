"""Ingestion: wire formats decoded into one normal form, and the single group-commit writer."""
