"""The Alexa skill: ASK SDK handler tree, interceptors, Flask and Lambda entry points.

Never imports torch: live generation runs only when explicitly enabled, behind generator/.
"""
