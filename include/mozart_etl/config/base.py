"""The building blocks every config model shares: the frozen base model, the
identifier types and the groups of column types.

A module of its own, importing nothing of the package but the constants,
because the rule kinds (`mozart_etl.validate.rules`) are config models too:
`config/models.py` imports them for `TableConfig.rules`, so they cannot import
`config/models.py` back.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mozart_etl.config.constants import ColumnType

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
# Source identifiers may hold spaces or reserved words (they are always quoted),
# but never quotes, backslashes or control characters.
SOURCE_IDENT_PATTERN = r"^[^\x00-\x1f\"`\\]{1,128}$"

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
SourceIdent = Annotated[str, Field(pattern=SOURCE_IDENT_PATTERN)]

NUMERIC_TYPES = frozenset(
    {ColumnType.INT, ColumnType.BIGINT, ColumnType.DOUBLE, ColumnType.DECIMAL}
)


class FrozenModel(BaseModel):
    """Base of every config model: unknown keys are errors, values immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
