"""Story generation: one story config, the keyword guide, the sampling loop, CTranslate2 glue,
the story generator and story assembly.

| module | what | torch |
|---|---|---|
| ``config`` | :class:`StoryConfig`: sampling, keyword schedule, acceptance rules | no |
| ``assemble`` | raw output -> :class:`GeneratedStory` (cleanup, title, checks, verdict) | no |
| ``ct2`` | CTranslate2 export, config fix, cached export, sampling options | no |
| ``guide`` | :class:`KeywordGuide`, token tables and tries, the logits processor | yes |
| ``sampling`` | :func:`sample_batch` (batched sampling loop), :func:`bits_per_char` | yes |
| ``story_generator`` | :class:`StoryGenerator`: model + config -> checked stories | yes |

Imports point one way: config <- assemble <- guide <- sampling <- story_generator, ct2 beside.
Importing this package (or its torch-free modules) does not import torch.
"""
