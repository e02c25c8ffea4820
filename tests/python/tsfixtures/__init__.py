"""Independent test-fixture generator for the legacy (Tekton TEP-0089) signed-results format.

Written against Tekton's behaviour, not against this project's Rust code, so that the two
can disagree: the fixtures are a second opinion on what the verifier must accept or reject.
"""
