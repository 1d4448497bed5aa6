"""The host's test set-up: sessionpacks' pytest plugin brings the hypothesis profiles
(SESSIONPACKS_HYPOTHESIS_PROFILE=dev|ci) and the ``sessionpacks_*`` fixtures."""

pytest_plugins = ["sessionpacks.testing.plugin"]
