"""The story store: stories, keywords, models registry, generation queue, listener state.

Knows nothing of Alexa; the skill and the generator both build on it.
"""
