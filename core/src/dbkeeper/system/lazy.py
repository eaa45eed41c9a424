"""Names a module offers but imports on first use, so that a command pays only for the classes it uses.

Creating a dataclass costs 0.3-0.7 ms (``dataclasses`` compiles its ``__init__``,
``__eq__``, ``__repr__`` …): a backup should not pay for the restore's or the object
storage's types. A module that offers such names keeps them in a module of their own and
answers for them with :class:`LazyNames` (PEP 562)::

    _LAZY = LazyNames(__name__, {"dbkeeper.plugin.restore": ("RestoreRequest", "RestoreResult")})


    def __getattr__(name: str) -> object:
        return _LAZY.attribute(name)


    def __dir__() -> list[str]:
        return _LAZY.names()

and imports the same names under ``if TYPE_CHECKING:`` so that type checkers and IDEs see
them as they are.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping


class LazyNames:
    """The names *module* imports on first use, by the module that defines each."""

    def __init__(self, module: str, homes: Mapping[str, Iterable[str]]) -> None:
        self.module = module
        self.home = {name: home for home, names in homes.items() for name in names}

    def attribute(self, name: str) -> object:
        """The value of *name*, imported from its module and kept in ours; AttributeError for any other name."""
        home = self.home.get(name)
        if home is None:
            raise AttributeError(f"module {self.module!r} has no attribute {name!r}")
        # __import__, not importlib.import_module: the import statement's path, which -X importtime reports
        value = getattr(__import__(home, fromlist=[name]), name)
        setattr(sys.modules[self.module], name, value)
        return value

    def names(self) -> list[str]:
        """What ``dir()`` of the module lists: what it holds now and every name it imports on first use."""
        return sorted({*vars(sys.modules[self.module]), *self.home})
