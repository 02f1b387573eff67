"""inferwatch: self-hosted model monitoring for computer-vision inference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Client", "InferwatchError", "__version__", "monitor"]

if TYPE_CHECKING:
    from inferwatch.sdk import Client, InferwatchError, monitor


def __getattr__(name: str) -> Any:
    """The SDK on first use: the server and the CLI, which never need it, start without it."""
    if name in __all__:
        import inferwatch.sdk

        return getattr(inferwatch.sdk, name)
    raise AttributeError(f"module 'inferwatch' has no attribute {name!r}")
