"""The CI gate: evaluate a run against a policy and a baseline (:mod:`.evaluate`), and
report the result in CI formats (:mod:`.formats`)."""
