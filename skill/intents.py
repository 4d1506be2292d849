"""Names the interaction model and the handlers must agree on: intents, slots, the slot type.

``skill/interaction_model/base.json`` declares them for Alexa, the handlers in skill/handlers/
match on them, and tests/test_interaction_models.py checks that the two sides list the same ones.
"""

from __future__ import annotations

# Our own intents.
TELL_STORY = "TellStoryIntent"
NEW_STORY = "NewStoryIntent"
LIST_TOPICS = "ListTopicsIntent"
SLEEP_SOUND = "SleepSoundIntent"
FEATURE_OFF = "FeatureOffIntent"
FEATURE_ON = "FeatureOnIntent"

# Built-in intents we handle.
YES = "AMAZON.YesIntent"
NO = "AMAZON.NoIntent"
NEXT = "AMAZON.NextIntent"
REPEAT = "AMAZON.RepeatIntent"
START_OVER = "AMAZON.StartOverIntent"
PAUSE = "AMAZON.PauseIntent"
RESUME = "AMAZON.ResumeIntent"
HELP = "AMAZON.HelpIntent"
STOP = "AMAZON.StopIntent"
CANCEL = "AMAZON.CancelIntent"
FALLBACK = "AMAZON.FallbackIntent"
NAVIGATE_HOME = "AMAZON.NavigateHomeIntent"

#: Every intent of the interaction model, in its order.
ALL = (
    TELL_STORY,
    NEW_STORY,
    LIST_TOPICS,
    SLEEP_SOUND,
    FEATURE_OFF,
    FEATURE_ON,
    YES,
    NO,
    NEXT,
    REPEAT,
    START_OVER,
    PAUSE,
    RESUME,
    HELP,
    STOP,
    CANCEL,
    FALLBACK,
    NAVIGATE_HOME,
)

# Slots of TellStoryIntent (both) and NewStoryIntent (the first).
KEYWORD_SLOT = "keyword"
SECOND_KEYWORD_SLOT = "secondKeyword"
#: The custom slot type of both slots; its values grow with the story catalogue.
KEYWORD_TYPE = "STORY_KEYWORD"
# More slots of TellStoryIntent: "a short story", "two stories".
LENGTH_SLOT = "length"
LENGTH_TYPE = "STORY_LENGTH"
COUNT_SLOT = "count"
# SleepSoundIntent: "play rain for twenty minutes".
SOUND_SLOT = "sound"
SOUND_TYPE = "SLEEP_SOUND"
DURATION_SLOT = "duration"
# FeatureOffIntent / FeatureOnIntent: "turn off the sleepy voice".
FEATURE_SLOT = "feature"
FEATURE_TYPE = "PREFERENCE_FEATURE"
