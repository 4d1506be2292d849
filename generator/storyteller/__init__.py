"""The storyteller: a pretrained instruction-tuned small LM (SmolLM2-135M-Instruct) fine-tuned
with a LoRA adapter to write bedtime stories; it fills the catalogue and can tell live stories.

``prompts`` and ``quality`` are torch-free (the skill and the store may import them); ``prepare``,
``finetune`` and ``engine`` load torch / CTranslate2 inside their functions.
"""
