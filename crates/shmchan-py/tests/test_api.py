"""The package's surface: documented, typed, and whole."""

from __future__ import annotations

import inspect
from pathlib import Path

import shmchan
from shmchan import _shmchan


def public_members(cls: type) -> list[str]:
    return [
        n
        for n, v in vars(cls).items()
        if not n.startswith("_") and (callable(v) or isinstance(v, property | classmethod))
    ]


def test_every_public_class_and_method_has_a_docstring() -> None:
    missing = []
    for name in shmchan.__all__:
        obj = getattr(shmchan, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for m in public_members(obj):
                if not inspect.getdoc(getattr(obj, m)):
                    missing.append(f"{name}.{m}")
    assert not missing, f"no docstring: {missing}"


def test_the_native_classes_are_documented_too() -> None:
    for cls in (_shmchan._Channel, _shmchan._Reader, _shmchan._Writer, _shmchan._Lease):
        assert inspect.getdoc(cls), cls
        for m in public_members(cls):
            assert inspect.getdoc(getattr(cls, m)), f"{cls.__name__}.{m}"


def test_the_stub_names_every_native_method() -> None:
    stub = (Path(shmchan.__file__).parent / "_shmchan.pyi").read_text()
    assert (Path(shmchan.__file__).parent / "py.typed").exists()
    for cls in (_shmchan._Channel, _shmchan._Reader, _shmchan._Writer, _shmchan._Lease):
        assert f"class {cls.__name__}" in stub
        for m in public_members(cls):
            assert f"def {m}(" in stub, f"{cls.__name__}.{m} is missing from the stub"
