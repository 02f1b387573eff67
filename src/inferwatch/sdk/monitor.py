"""`monitor`: every `infer` of an `inference_sdk.InferenceHTTPClient` logged, with no change to
the code that calls it."""

from __future__ import annotations

from typing import Any

from inferwatch.sdk.client import Client


class Monitored:
    """Stands in for the wrapped client: `infer` (and `infer_async`) answer exactly what the
    wrapped client answers, after queuing the answer for inferwatch; everything else is the
    wrapped client's own."""

    def __init__(self, http_client: Any, client: Client, device_id: str | None = None,
                 metadata: dict[str, Any] | None = None, tags: list[str] | None = None) -> None:
        self._wrapped = http_client
        self._client = client
        self._device_id = device_id
        self._metadata = metadata
        self._tags = tags

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def infer(self, inference_input: Any, model_id: str | None = None) -> Any:
        result = self._wrapped.infer(inference_input, model_id=model_id)
        self._log(result, model_id)
        return result

    async def infer_async(self, inference_input: Any, model_id: str | None = None) -> Any:
        result = await self._wrapped.infer_async(inference_input, model_id=model_id)
        self._log(result, model_id)
        return result

    def _log(self, result: Any, model_id: str | None) -> None:
        model = model_id or self._selected_model()
        if model and isinstance(result, dict | list):
            self._client.log(result, model_id=model, device_id=self._device_id, metadata=self._metadata,
                             tags=self._tags, source="inference-sdk")

    def _selected_model(self) -> str | None:
        """The model `select_model` chose (the SDK keeps it in a private attribute)."""
        selected = getattr(self._wrapped, "selected_model", None)
        if selected is None:
            selected = getattr(self._wrapped, "_InferenceHTTPClient__selected_model", None)
        return selected if isinstance(selected, str) else None


def monitor(http_client: Any, client: Client, device_id: str | None = None,
            metadata: dict[str, Any] | None = None, tags: list[str] | None = None) -> Any:
    """Wraps an `InferenceHTTPClient` so every `infer` result is logged with its model id."""
    return Monitored(http_client, client, device_id=device_id, metadata=metadata, tags=tags)
