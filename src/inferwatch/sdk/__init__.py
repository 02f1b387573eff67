"""The Python SDK: `Client` logs inferences in the background and queries inferwatch; `monitor`
wraps an `inference_sdk.InferenceHTTPClient` so its results are logged without code changes."""

from inferwatch.sdk.client import Client, Counters, InferwatchError
from inferwatch.sdk.monitor import monitor

__all__ = ["Client", "Counters", "InferwatchError", "monitor"]
