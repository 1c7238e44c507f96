"""What is given and when: regimens and NONMEM-style event data, in the engine's records.

One module per concept: ``regimen`` (:class:`Dose` and :class:`Regimen`, in the model's units,
expanded to explicit dose records) and ``records`` (a NONMEM-style data set checked once and
expanded into the engine's event stream, :class:`EventStream`).
"""

from .records import EventStream
from .regimen import Dose, Regimen

__all__ = ["Dose", "Regimen", "EventStream"]
