"""One exception tree: every error the project raises on purpose is a GatewayError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import drivers
import gateway
import simulators
from drivers.errors import GatewayError

PACKAGES = (drivers, gateway, simulators)


def our_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in PACKAGES:
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            for _, value in inspect.getmembers(module, inspect.isclass):
                if issubclass(value, BaseException) and value.__module__ == info.name:
                    found[f"{info.name}.{value.__name__}"] = value
    return [found[name] for name in sorted(found)]


@pytest.mark.parametrize("error", our_exceptions(), ids=lambda e: e.__qualname__)
def test_every_error_of_ours_is_a_gateway_error(error: type[BaseException]) -> None:
    assert issubclass(error, GatewayError), f"{error.__module__}.{error.__qualname__}"


def test_the_tree_is_not_empty() -> None:
    assert len(our_exceptions()) > 10
