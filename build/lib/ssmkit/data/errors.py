"""`DataError`: the one error for input data that cannot be used as given (every data module and reader raises it).

Its message says where the problem is: the file or source, the record in it, the position in the record, then
what is wrong, e.g. `train.fa, record chr2_17, position 40: 'J' is not a nucleotide`.
"""

from __future__ import annotations

from typing import Any


class DataError(ValueError):
    """Bad input data; `source`, `record` and `position` (when known) lead the message."""

    def __init__(self, message: str, *, source: Any = None, record: Any = None, position: Any = None) -> None:
        self.source, self.record, self.position = source, record, position
        where = [str(source)] if source is not None else []
        where += [f"record {record}"] if record is not None else []
        where += [f"position {position}"] if position is not None else []
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
