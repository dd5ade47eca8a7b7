"""Failures the launcher recovers from."""


class LearnerFailure(RuntimeError):
    """A learner rank died; the step it was in is lost and the run restarts from its checkpoint."""
