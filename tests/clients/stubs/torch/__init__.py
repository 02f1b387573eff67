"""Import-time stand-in for torch, for driving the `inference` package's model-monitoring code
without installing torch (about 1 GB). `inference_models.configuration` asks it for a default
device and `roboflow_workflows` names its types in annotations; nothing on the reporting path
calls it. Any attribute is a placeholder class, any `torch.*` / `torchvision.*` submodule a module
of placeholders."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any


class _Placeholder:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __class_getitem__(cls, item: Any) -> type[_Placeholder]:
        return cls

    def __getattr__(self, name: str) -> Any:
        return _Placeholder()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _Placeholder()


def _placeholder(module: types.ModuleType, name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    value = type(name, (_Placeholder,), {})
    setattr(module, name, value)
    return value


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        return _placeholder(self, name)


class _Finder:
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] in ("torch", "torchvision") and fullname not in sys.modules:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)  # type: ignore[arg-type]
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _PlaceholderModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


sys.meta_path.insert(0, _Finder())


class _Cuda:
    @staticmethod
    def is_available() -> bool:
        return False


cuda = _Cuda()
__version__ = "0.0.0+inferwatch-stub"


def __getattr__(name: str) -> Any:
    return _placeholder(sys.modules[__name__], name)
