"""Pipeline names Alexa can hear: at a session's start the skill replaces the PIPELINE_NAME slot
type's values for this session (``Dialog.UpdateDynamicEntities``) with the pipelines registered
now and their spoken forms, so "is the fraud build done" resolves to ``fraud`` even though the
interaction model was built before ``fraud`` existed. Entity resolution then reports the match
under the dynamic authority, which the handlers read first."""
from __future__ import annotations

import logging
from typing import Any

from ask_sdk_core.dispatch_components import AbstractResponseInterceptor
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_model import Response
from ask_sdk_model.dialog import DynamicEntitiesDirective
from ask_sdk_model.er.dynamic import Entity, EntityListItem, EntityValueAndSynonyms, UpdateBehavior

from lambda_pipeline.ports import Pipelines

from .pipeline_names import spoken_names

__all__ = ["DynamicEntitiesInterceptor", "pipeline_entities", "SLOT_TYPE"]

logger = logging.getLogger(__name__)

SLOT_TYPE = "PIPELINE_NAME"
HEARD = "entities"  # session attribute: the pipeline names this session's entities hold
_MAX_VALUES = 100  # Alexa accepts at most 100 dynamic values per slot type


def pipeline_entities(names: list[str], locale: str) -> DynamicEntitiesDirective:
    """The directive for ``names`` in ``locale`` (REPLACE: the session hears exactly these)."""
    values = [Entity(id=entry.id, name=EntityValueAndSynonyms(value=entry.value, synonyms=list(entry.synonyms)))
              for entry in spoken_names([n for n in names if n], locale)[:_MAX_VALUES]]
    return DynamicEntitiesDirective(update_behavior=UpdateBehavior.REPLACE,
                                    types=[EntityListItem(name=SLOT_TYPE, values=values)])


class DynamicEntitiesInterceptor(AbstractResponseInterceptor):
    """Adds the directive when a conversation opens (a launch, or a first question that keeps the
    session open), and again whenever the pipelines changed since (one registered mid-session).
    A response that ends the session gets none: the entities would die with it."""

    def __init__(self, pipelines: Pipelines) -> None:
        self.pipelines = pipelines

    def process(self, handler_input: HandlerInput, response: Response) -> None:
        envelope: Any = handler_input.request_envelope
        request = envelope.request
        kind = getattr(request, "object_type", None)
        session = envelope.session
        if kind not in ("LaunchRequest", "IntentRequest") or session is None or response is None \
                or response.should_end_session is not False:
            return
        attributes = handler_input.attributes_manager.session_attributes
        try:
            names = handler_input.attributes_manager.request_attributes.get("pipelines")
            names = sorted(n for n in (names if names is not None else self.pipelines.names()) if n)
            if not names or (not session.new and attributes.get(HEARD) == names):
                return
            directive = pipeline_entities(names, request.locale or "en-US")
        except Exception:  # hearing names is a help; it must never spoil the answer
            logger.info("dynamic entities not sent", exc_info=True)
            return
        attributes[HEARD] = names
        response.directives = [*(response.directives or []), directive]
