"""AWS Lambda entry point (handler ``lambda_function.lambda_handler``): the same skill as Flask."""

import gc

# A cold start imports and builds the whole skill; the garbage collector's full passes over
# those long-lived objects cost ~40 ms and free nothing. Collect normally once it is built,
# with the start-up objects frozen out of every later pass.
gc.disable()
try:
    from skill.builder import build_skill

    lambda_handler = build_skill().lambda_handler()
finally:
    gc.freeze()
    gc.enable()
