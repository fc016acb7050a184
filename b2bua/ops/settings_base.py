"""What every settings section shares: strict models (unknown keys are errors), ports, regexes, config errors."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Port = Annotated[int, Field(ge=1, le=65535)]


def valid_regex(v: str) -> str:
    try:
        re.compile(v)
    except re.error as e:
        raise ValueError(f"not a valid regular expression: {e}") from e
    return v


class ConfigError(Exception):
    """A configuration problem, phrased for the operator: ``file: key: reason``."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        super().__init__(f"{source}: {key}: {reason}" if key else f"{source}: {reason}")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
