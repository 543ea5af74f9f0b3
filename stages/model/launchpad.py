"""Launchpad config generated from tuneforge's pydantic settings, so the UI shows every field with its description
and the settings classes stay the one place that defines and validates them."""

from __future__ import annotations

import types
from typing import Literal, Optional, Union, get_args, get_origin

import dagster as dg
from pydantic import BaseModel, Field, create_model


def _optional_launchpad_type(annotation):
    inner = annotation
    if get_origin(annotation) in (Union, types.UnionType):
        inner = next(arg for arg in get_args(annotation) if arg is not type(None))
    # Dagster config has no Literal inside Optional: a plain string, checked when the settings are built.
    return Optional[str if get_origin(inner) is Literal else inner]  # noqa: UP045 (Dagster reads typing.Optional)


def overrides_config(settings: type[BaseModel], name: str, doc: str) -> type[dg.Config]:
    """A ``dg.Config`` with every field of ``settings``, optional: a value set in the launchpad overrides it."""
    fields = {
        field_name: (_optional_launchpad_type(field.annotation),
                     Field(None, description=f"{field.description or field_name} (empty: keep the configured value)"))
        for field_name, field in settings.model_fields.items()
    }
    return create_model(name, __base__=dg.Config, __doc__=doc, **fields)
