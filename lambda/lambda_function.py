"""AWS Lambda entry point (handler ``lambda_function.lambda_handler``): the same skill as Flask."""

from skill.builder import build_skill

lambda_handler = build_skill().lambda_handler()
