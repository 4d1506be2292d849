"""The skill factory: nothing is built at import; Flask, Lambda and tests each build their own."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from ask_sdk_core.skill import CustomSkill
from ask_sdk_core.skill_builder import CustomSkillBuilder
from ask_sdk_model import RequestEnvelope
from ask_sdk_model.services import ApiClient, ApiClientRequest, ApiClientResponse

from db import noun_forms
from settings import Settings
from skill.handlers import CatchAllExceptionHandler, request_handlers
from skill.interceptors import (
    ListenerStateLoadInterceptor,
    ListenerStateSaveInterceptor,
    LocalizationInterceptor,
    RequestLoggingInterceptor,
    ResponseLoggingInterceptor,
)
from skill.persistence import SqlPersistenceAdapter
from skill.sdk_codec import FastSerializer
from skill.services import SkillServices

logger = logging.getLogger(__name__)

#: Seconds we wait for Alexa's directive service (progressive responses) before giving up.
API_TIMEOUT_SECONDS = 2.0


class TimeoutApiClient(ApiClient):
    """The SDK's DefaultApiClient with a timeout (it sets none: a stuck call would eat the
    8-second budget), built on first use: it imports ``requests``, which only the progressive
    response of a live story needs, and which would otherwise add to every cold start."""

    def __init__(self, timeout: float = API_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._client: ApiClient | None = None

    def invoke(self, request: ApiClientRequest) -> ApiClientResponse:
        if self._client is None:
            from ask_sdk_core.api_client import DefaultApiClient

            timeout = self.timeout

            class _WithTimeout(DefaultApiClient):  # type: ignore[misc]
                def _resolve_method(self, request: Any) -> Any:
                    return functools.partial(super()._resolve_method(request), timeout=timeout)

            self._client = _WithTimeout()
        return self._client.invoke(request)


class BedtimeSkillBuilder(CustomSkillBuilder):  # type: ignore[misc]
    """The SDK's builder, with skills that read envelopes through :class:`FastSerializer` and a
    Lambda handler that builds its skill once (the SDK's builds one per invocation and turns the
    event back into a JSON string to parse it again)."""

    def create(self) -> CustomSkill:
        skill = super().create()
        skill.serializer = FastSerializer()
        return skill

    def lambda_handler(self) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        skill = self.create()

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            request_envelope = skill.serializer.from_json(event, RequestEnvelope)
            response = skill.invoke(request_envelope=request_envelope, context=context)
            return skill.serializer.serialize(response)  # type: ignore[no-any-return]

        return handler


def build_skill(
    settings: Settings | None = None,
    *,
    services: SkillServices | None = None,
    api_client: ApiClient | None = None,
) -> BedtimeSkillBuilder:
    """A configured BedtimeSkillBuilder; call ``.create()`` (Flask) or ``.lambda_handler()``.

    ``api_client`` reaches Alexa's services (progressive responses); tests pass a fake.
    """
    if services is None:
        services = SkillServices.from_settings(settings or Settings.from_env())
    settings = services.settings
    if settings.live_model_path and settings.require_human_review:
        logger.warning(
            "BEDTIME_LIVE_MODEL is ignored: BEDTIME_REQUIRE_HUMAN_REVIEW is on and a "
            "live story cannot be reviewed before it is told"
        )
    services.warm_up()
    noun_forms.load()  # keyword normalisation's table, now rather than in the first request
    builder = BedtimeSkillBuilder(
        persistence_adapter=SqlPersistenceAdapter(services.session_factory),
        api_client=api_client or TimeoutApiClient(),
    )
    builder.skill_id = settings.skill_id
    builder.add_global_request_interceptor(LocalizationInterceptor())
    builder.add_global_request_interceptor(RequestLoggingInterceptor())
    builder.add_global_request_interceptor(ListenerStateLoadInterceptor(services))
    builder.add_global_response_interceptor(ListenerStateSaveInterceptor(services))
    builder.add_global_response_interceptor(ResponseLoggingInterceptor())
    for handler in request_handlers(services):
        builder.add_request_handler(handler)
    builder.add_exception_handler(CatchAllExceptionHandler())
    return builder
