"""stub"""

from typing import Any


def register(top: Any, common: Any) -> None:
    pass
