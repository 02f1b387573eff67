"""Queries: filters parsed once from a query string, compiled by each store backend."""
