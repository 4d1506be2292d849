"""The story model: corpus preparation, tokenizer, training, evaluation and export.

Importing the package is cheap and torch-free; heavy modules import torch themselves.
"""
