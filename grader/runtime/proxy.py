"""The ``student`` proxy: the objects a hidden test holds for the submission's.

``student.<module>`` is a :class:`ModuleProxy`; an object that stays in the runtime is a
:class:`HandleProxy` whose attribute reads, sets, calls, ``len`` and indexing each cross
the pipe of its :class:`~grader.runtime.student.StudentRuntime`. Nothing here runs
student code in the grader's process: equality is the identity of the remote object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grader.i18n import Domain
from grader.runtime.errors import StudentCrashed
from grader.runtime.protocol import Handle, ModuleRef

if TYPE_CHECKING:  # the runtime imports these proxies; only type hints point back
    from grader.runtime.student import StudentRuntime

__all__ = ["HandleProxy", "ModuleProxy", "StudentProxy"]

_, _n = Domain("cli").functions()


class StudentProxy:
    """``student.<module>``: the submission's modules (no grader code runs beside them)."""

    def __init__(self, runtime: StudentRuntime) -> None:
        self._runtime = runtime

    def time_limit(self, seconds: float) -> Any:
        """A context manager: another wall-clock limit for the calls made inside it."""
        return self._runtime.time_limit(seconds)

    def seed(self, seed: int) -> None:
        """Seed Python, numpy and TensorFlow in the runtime (as before every test)."""
        self._runtime.seed(seed)

    def __getattr__(self, name: str) -> ModuleProxy:
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._runtime.modules:
            raise AttributeError(f"the submission has no module {name!r}; modules: "
                                 f"{', '.join(self._runtime.modules)}")
        return self._runtime.module(name)

    def __repr__(self) -> str:
        return f"<student {', '.join(self._runtime.modules)}>"


class ModuleProxy:
    """``student.mlp_numpy``: attribute access reads the module in the runtime."""

    def __init__(self, runtime: StudentRuntime, name: str) -> None:
        object.__setattr__(self, "_runtime", runtime)
        object.__setattr__(self, "_name", name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._runtime.getattr(ModuleRef(self._name), name, f"{self._name}.{name}")

    def __setattr__(self, name: str, value: Any) -> None:
        self._runtime.setattr(ModuleRef(self._name), name, value, f"{self._name}.{name} = ...")

    def __repr__(self) -> str:
        return f"<student module {self._name}>"


class HandleProxy:
    """An object that lives in the student runtime: call it, read and set attributes, index it.

    ``np.asarray(proxy)`` converts it in the runtime; only a plain numeric
    array crosses back. Equality is identity of the remote object: a
    student's ``__eq__`` never runs in the grader.
    """

    def __init__(self, runtime: StudentRuntime, handle: Handle, generation: int,
                 label: str) -> None:
        object.__setattr__(self, "_runtime", runtime)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_generation", generation)
        object.__setattr__(self, "_label", label)

    @property
    def type_name(self) -> str:
        """The remote object's type name."""
        return self._handle.type_name

    def _what(self, suffix: str = "") -> str:
        return f"{self._handle.type_name}{suffix}"

    def _check_alive(self) -> None:
        if self._generation != self._runtime._generation:
            crashes = self._runtime.crashes
            kind = self._handle.type_name
            if crashes:
                raise StudentCrashed(_("this {kind} came from an earlier run of the submission "
                                       "that ended ({reason}); its state is lost", kind=kind,
                                       reason=crashes[-1]))
            raise StudentCrashed(_("this {kind} came from an earlier run of the submission "
                                   "that ended; its state is lost", kind=kind))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._check_alive()
        return self._runtime.getattr(self, name, self._what(f".{name}"))

    def __setattr__(self, name: str, value: Any) -> None:
        self._check_alive()
        self._runtime.setattr(self, name, value, self._what(f".{name} = ..."))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._check_alive()
        return self._runtime.call(self, None, args, kwargs, f"{self._label}(...)")

    def __len__(self) -> int:
        self._check_alive()
        return self._runtime.len(self, self._what(" len()"))

    def __getitem__(self, key: Any) -> Any:
        self._check_alive()
        return self._runtime.getitem(self, key, self._what("[...]"))

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        self._check_alive()
        array = self._runtime.to_array(self, self._what(" as an array"))
        return array if dtype is None else array.astype(dtype)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HandleProxy) and other._handle.id == self._handle.id \
            and other._runtime is self._runtime

    def __hash__(self) -> int:
        return hash((id(self._runtime), self._handle.id))

    def __repr__(self) -> str:
        return f"<student {self._handle.type_name}: {self._handle.repr_snippet}>"

    def __del__(self) -> None:
        try:
            self._runtime._release(self._handle.id, self._generation)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
