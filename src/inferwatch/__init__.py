"""inferwatch: self-hosted model monitoring for computer-vision inference."""

__version__ = "0.1.0"

from inferwatch.sdk import Client, InferwatchError, monitor

__all__ = ["Client", "InferwatchError", "__version__", "monitor"]
