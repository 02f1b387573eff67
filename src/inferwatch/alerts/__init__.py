"""Alerts: rules a workspace keeps (`rules`), the evaluator that measures them on a schedule and
moves their state (`evaluator`), and the channels that tell people (`channels`)."""
