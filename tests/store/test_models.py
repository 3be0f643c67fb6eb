"""What the store modules take for granted about the declarative models."""

from __future__ import annotations

from sqlalchemy import Table

from authmesh.store.models import Base


def test_every_row_class_maps_one_plain_table() -> None:
    # Base narrows ``__table__`` to Table for the type checker; the store modules hand it
    # to insert/update/delete, which a row mapped to a join or subquery would break.
    mappers = list(Base.registry.mappers)
    assert len(mappers) == len(Base.metadata.tables)
    for mapper in mappers:
        assert isinstance(mapper.class_.__table__, Table), mapper.class_.__name__
