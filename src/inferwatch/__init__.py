"""inferwatch: self-hosted model monitoring for computer-vision inference."""

__version__ = "0.1.0"
