"""``get_params`` / ``set_params`` / ``repr`` by scikit-learn's estimator rules, without sklearn.

scikit-learn's :func:`sklearn.base.clone`, grid searches and pipelines need only this much of an
estimator: every argument of ``__init__`` is stored, unchanged, as an attribute of the same name
(checks and derived values wait for ``fit``), ``get_params`` returns them and ``set_params`` sets
them. :class:`BaseEstimator` provides both from the signature of ``__init__``, as
``sklearn.base.BaseEstimator`` does, so the library does not import scikit-learn.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

__all__ = ["BaseEstimator"]


def _same(value: Any, default: Any) -> bool:
    """True when ``value`` equals ``default`` and has its type (arrays never compare equal)."""
    if value is default:
        return True
    if type(value) is not type(default):
        return False
    try:
        return bool(value == default)
    except (TypeError, ValueError):  # e.g. arrays: ambiguous truth value
        return False


class BaseEstimator:
    """Parameters of an estimator read from the signature of its ``__init__``.

    Subclasses store every ``__init__`` argument as given under its own name, and nothing
    else in ``__init__``. ``repr_always`` names parameters that ``repr`` shows even at their
    default (the others only when they differ from it, like scikit-learn's).
    """

    repr_always: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def get_param_names(cls) -> list[str]:
        """The names of the ``__init__`` arguments, in signature order."""
        init = cls.__init__
        if init is object.__init__:
            return []
        names = []
        for name, parameter in inspect.signature(init).parameters.items():
            if name == "self" or parameter.kind == parameter.VAR_KEYWORD:
                continue
            if parameter.kind == parameter.VAR_POSITIONAL:
                raise RuntimeError(
                    f"{cls.__name__}.__init__ takes *{name}: scikit-learn estimators must "
                    "declare every parameter explicitly"
                )
            names.append(name)
        return names

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Every ``__init__`` argument as stored (as given to ``__init__`` or ``set_params``).

        With ``deep=True`` the parameters of parameters that are estimators themselves are
        included too, as ``<name>__<key>``.
        """
        params: dict[str, Any] = {}
        for name in self.get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update({f"{name}__{k}": v for k, v in value.get_params(deep=True).items()})
            params[name] = value
        return params

    def set_params(self, **params: Any) -> BaseEstimator:
        """Set parameters (``<name>__<key>`` for a parameter of a parameter); returns ``self``.

        Values are stored as given and checked at the next ``fit``.

        Raises:
            ValueError: a key that is not a parameter, naming it and listing the valid ones.
        """
        valid = self.get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, delimiter, sub_key = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {valid!r}."
                )
            if delimiter:
                nested.setdefault(name, {})[sub_key] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        signature = inspect.signature(type(self).__init__).parameters
        shown = []
        for name in self.get_param_names():
            value = getattr(self, name)
            if name in self.repr_always or not _same(value, signature[name].default):
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"
