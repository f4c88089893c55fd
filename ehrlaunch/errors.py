"""How a launch is refused: a message that says what happened and advice that says what
the clinician can do, with no patient data in either."""

from __future__ import annotations

from viewer.errors import ViewerError

ASK_AGAIN = "Close this view and open the images again from the patient's chart."


class LaunchRefused(ViewerError):
    status = 400
    code = "launch_refused"
    advice = ASK_AGAIN

    def __init__(self, message: str, *, code: str, status: int = 400, advice: str = ASK_AGAIN):
        super().__init__(message, code=code, status=status)
        self.advice = advice
