"""One AbstractRequestHandler class per intent; :func:`request_handlers` sets the order."""

from __future__ import annotations

from ask_sdk_core.dispatch_components import AbstractRequestHandler

from skill.handlers.builtins import (
    CancelIntentHandler,
    FallbackIntentHandler,
    HelpIntentHandler,
    NavigateHomeIntentHandler,
    StopIntentHandler,
    UnhandledIntentHandler,
)
from skill.handlers.errors import CatchAllExceptionHandler
from skill.handlers.launch import LaunchRequestHandler, SessionEndedRequestHandler
from skill.handlers.navigation import (
    NextIntentHandler,
    NoIntentHandler,
    PauseIntentHandler,
    RepeatIntentHandler,
    ResumeIntentHandler,
    StartOverIntentHandler,
    YesIntentHandler,
)
from skill.handlers.sleep import (
    FeatureOffIntentHandler,
    FeatureOnIntentHandler,
    PlaybackEventHandler,
    PlaybackFailedHandler,
    PlaybackNearlyFinishedHandler,
    SleepSoundIntentHandler,
    SleepSoundStopHandler,
)
from skill.handlers.story import (
    ListTopicsIntentHandler,
    NewStoryIntentHandler,
    TellStoryIntentHandler,
)
from skill.handlers.system import (
    AplUserEventHandler,
    AudioPlayerEventHandler,
    CanFulfillIntentRequestHandler,
    ConnectionsResponseHandler,
    ExceptionEncounteredHandler,
    PlaybackControllerEventHandler,
)
from skill.services import SkillServices

__all__ = ["CatchAllExceptionHandler", "request_handlers"]


def request_handlers(services: SkillServices) -> list[AbstractRequestHandler]:
    """Every request handler, specific first; the SDK tries them in this order."""
    classes: list[type] = [
        LaunchRequestHandler,
        SleepSoundStopHandler,  # before Pause/Stop/Cancel: only while a sleep sound plays
        TellStoryIntentHandler,
        NewStoryIntentHandler,
        ListTopicsIntentHandler,
        SleepSoundIntentHandler,
        FeatureOffIntentHandler,
        FeatureOnIntentHandler,
        YesIntentHandler,
        NoIntentHandler,
        NextIntentHandler,
        RepeatIntentHandler,
        StartOverIntentHandler,
        PauseIntentHandler,
        ResumeIntentHandler,
        HelpIntentHandler,
        StopIntentHandler,
        CancelIntentHandler,
        NavigateHomeIntentHandler,
        FallbackIntentHandler,
        SessionEndedRequestHandler,
        PlaybackNearlyFinishedHandler,  # AudioPlayer: before any generic acknowledgement
        PlaybackEventHandler,
        PlaybackFailedHandler,
        ExceptionEncounteredHandler,
        CanFulfillIntentRequestHandler,
        AudioPlayerEventHandler,  # acknowledgements: after any real player handling
        PlaybackControllerEventHandler,
        AplUserEventHandler,
        ConnectionsResponseHandler,
        UnhandledIntentHandler,  # must stay last
    ]
    return [cls(services) for cls in classes]
