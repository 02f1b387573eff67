"""The transparent inference proxy: put it between `InferenceHTTPClient` and an inference server,
and every inference answer is recorded in inferwatch without touching the inference code."""

from inferwatch.proxy.app import Proxy
from inferwatch.proxy.recorder import ProxyCounters, Record, Recorder, SdkRecorder, WriterRecorder

__all__ = ["Proxy", "ProxyCounters", "Record", "Recorder", "SdkRecorder", "WriterRecorder"]
