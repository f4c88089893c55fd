"""The load generator of ``bench.load``: locust as a library, headless, in a process of its own.

``python -m bench.load_users CONFIG.json RESULT.json`` (``bench.load`` starts it once per
run; CONFIG holds the address of nginx, the users, the seconds, the studies, the demo EHR's
secret and the presenter's session). gevent patches this process's sockets when locust is
imported, which is why it is not ``bench.load``'s own process (that one starts the servers
with ``subprocess`` and ``urllib``, unpatched).

Four kinds of user, as the browser would act (URLs as ``static/viewer/js/api.js`` and
``imageLoader.js`` build them; one request at a time per user, no prefetch):

* ``Clinician`` (weight 3): launched from the signed EHR context (``/ehrlaunch/launch?launch=
  <HS256 JWT>``, signed by ``ehrlaunch.demo.ehr.sign_launch`` as the demo EHR does), opens
  the CT (viewer page, ``GET /api/studies/<uid>``), scrolls runs of slices (PNG rendered
  frames at the current window) and changes the window (three half-size JPEG q70 renders
  while dragging, then the PNG at the new window).
* ``Radiologist`` (weight 1): signs in with a password, opens and scrolls the CT, POSTs a
  length and an ellipse ROI (``/api/measurements``), asks the priors of the current study of
  the prior pair and opens the prior (its study JSON and slices).
* ``Presenter`` (exactly one): the creator of the live share link; publishes a new slice
  (``POST /api/shares/<id>/live``) every two seconds.
* ``Follower`` (``followers`` of them): opens the share link (``GET /s/<token>``, a guest
  session), the study, then holds the live event stream open and fetches the image the
  presenter shows each time the state changes.

Statistics: every request's latency (locust's ``request`` event), kept raw, split by the
request's name into ``image`` (rendered frames) and ``api`` (everything else but the
sign-ins and the stream's connection, which are ``setup``); counted only after every user
has finished its ``on_start`` (sign-in, launch), then for ``seconds``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import gevent
from locust import HttpUser, User, between, events, task
from locust.env import Environment

from ehrlaunch.demo.ehr import sign_launch

CONFIG: dict[str, Any] = {}
READY: set[int] = set()
RECORD = {"on": False}
LATENCIES: dict[str, list[float]] = {"image": [], "api": [], "setup": []}
ERRORS: Counter[str] = Counter()
COUNTS: Counter[str] = Counter()
BY_NAME: dict[str, list[float]] = {}
CANVAS = (1024, 768)  # the viewport's canvas in device pixels (the CT is 512 x 512: no resize)


def category(name: str) -> str:
    if name.startswith("image"):
        return "image"
    if name.startswith("setup"):
        return "setup"
    return "api"


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: BaseException | None = None,
    response: Any = None,
    **_: Any,
) -> None:
    if exception is not None:  # counted also before the clock starts (launch, sign-in)
        status = getattr(response, "status_code", None)
        ERRORS[f"{request_type} {name}: {status or type(exception).__name__}"] += 1
    if not RECORD["on"]:
        return
    kind = category(name)
    LATENCIES[kind].append(response_time)
    BY_NAME.setdefault(f"{request_type} {name}", []).append(response_time)
    COUNTS[kind] += 1


class Browser(HttpUser):
    """A browser's cookies, kept by hand (``__Host-`` cookies on ``localhost``) and sent as a
    ``Cookie`` header; unsafe requests carry the Origin and the CSRF token as the viewer's."""

    abstract = True
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.cookies: dict[str, str] = {}
        self.frames: list[dict[str, Any]] = []
        self.window = (40.0, 400.0 + CONFIG["salt"])
        self.slice = random.randrange(99)
        self.begin()
        READY.add(id(self))

    def begin(self) -> None:
        raise NotImplementedError

    def call(self, method: str, path: str, name: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method not in ("GET", "HEAD"):
            headers["Origin"] = CONFIG["host"]
            if "__Host-csrftoken" in self.cookies:
                headers["X-CSRFToken"] = self.cookies["__Host-csrftoken"]
        response = self.client.request(
            method,
            path,
            name=name,
            headers=headers,
            allow_redirects=False,
            timeout=60,
            verify=False,  # nginx's self-signed certificate; per request: REQUESTS_CA_BUNDLE
            # would override a Session's
            **kwargs,
        )
        raw = getattr(response, "raw", None)
        for header in raw.headers.getlist("Set-Cookie") if raw is not None else []:
            pair, _, attributes = header.partition(";")
            key, _, value = pair.strip().partition("=")
            if not value.strip('"') or "max-age=0" in attributes.lower().replace(" ", ""):
                self.cookies.pop(key, None)
            else:
                self.cookies[key] = value
        return response

    def open_study(self, uid: str, *, page: bool = True) -> list[dict[str, Any]]:
        """The viewer page and the study's JSON; its first series' frames in viewer order."""
        if page:
            self.call("GET", f"/viewer/{uid}/", "api: viewer page")
        answer = self.call(
            "GET", f"/api/studies/{uid}", "api: study", headers={"Accept": "application/json"}
        )
        if answer.status_code != 200:
            return []
        series = max(answer.json()["series"], key=lambda s: s["number_of_instances"])
        return [
            {
                "rendered": i["urls"]["rendered"],
                "sop": i["sop_instance_uid"],
                "study": uid,
                "series": series["series_instance_uid"],
            }
            for i in series["instances"]
        ]

    def image(
        self,
        frame: dict[str, Any],
        window: tuple[float, float],
        *,
        dragging: bool = False,
        who: str = "",
    ) -> None:
        center, width = window
        path = frame["rendered"].replace("{frame}", "1")
        query = f"window={round(center, 2)},{round(width, 2)}"
        if dragging:
            half = f"{-(-CANVAS[0] // 2)},{-(-CANVAS[1] // 2)}"
            query += f"&accept={quote('image/jpeg')}&quality=70&viewport={quote(half)}"
            name = "image: rendered JPEG (dragging the window)"
        else:
            query += f"&accept={quote('image/png')}"
            name = f"image: rendered PNG{who}"
        self.call("GET", f"{path}?{query}", name)

    def scroll(self, frames: list[dict[str, Any]]) -> None:
        """A run of 5-15 neighbouring slices, about 10 a second, one way."""
        if not frames:
            return
        step = random.choice((-1, 1))
        for _ in range(random.randint(5, 15)):
            self.slice = min(len(frames) - 1, max(0, self.slice + step))
            self.image(frames[self.slice], self.window)
            time.sleep(0.1)

    def change_window(self, frames: list[dict[str, Any]]) -> None:
        """Dragging the window: three cheap JPEG renders, then the PNG where it stops."""
        if not frames:
            return
        center, width = self.window
        for _ in range(3):
            center += random.choice((-30, -15, 15, 30))
            width = max(1.0, width + random.choice((-40, -20, 20, 40)))
            self.image(frames[self.slice], (center, width), dragging=True)
            time.sleep(0.05)
        self.window = (center, width)
        self.image(frames[self.slice], self.window)


class Clinician(Browser):
    weight = 3

    def begin(self) -> None:
        ehr = CONFIG["ehr"]
        number = random.randrange(10**6)
        launch = sign_launch({**ehr, "user": f"dr.load{number}"}, CONFIG["ct_study"])
        done = self.call("GET", f"/ehrlaunch/launch?launch={launch}", "setup: EHR launch")
        target = done.headers.get("Location", "")
        if done.status_code != 303 or not target.endswith(f"/viewer/{CONFIG['ct_study']}/"):
            ERRORS[f"setup: EHR launch answered {done.status_code} to {target!r}"] += 1
        self.frames = self.open_study(CONFIG["ct_study"])

    @task(3)
    def scroll_ct(self) -> None:
        self.scroll(self.frames)

    @task(1)
    def window_ct(self) -> None:
        self.change_window(self.frames)


class Radiologist(Browser):
    weight = 1

    def begin(self) -> None:
        page = self.call("GET", "/login/", "setup: login page")
        marker = 'name="csrfmiddlewaretoken" value="'
        token = page.text.split(marker, 1)[1].split('"', 1)[0] if marker in page.text else ""
        account = random.choice(CONFIG["radiologists"])
        done = self.call(
            "POST",
            "/login/",
            "setup: password sign-in",
            data={
                "username": account,
                "password": CONFIG["password"],
                "csrfmiddlewaretoken": token,
            },
        )
        if done.status_code != 302:
            ERRORS[f"setup: sign-in answered {done.status_code}"] += 1
        self.frames = self.open_study(CONFIG["ct_study"])
        self.prior_frames: list[dict[str, Any]] = []

    @task(4)
    def scroll_ct(self) -> None:
        self.scroll(self.frames)

    @task(1)
    def window_ct(self) -> None:
        self.change_window(self.frames)

    @task(2)
    def measure(self) -> None:
        if not self.frames:
            return
        frame = self.frames[self.slice]
        base = {
            "study_instance_uid": frame["study"],
            "series_instance_uid": frame["series"],
            "sop_instance_uid": frame["sop"],
            "frame": 1,
        }
        x, y = random.uniform(150, 300), random.uniform(150, 300)
        for kind, points, name in (
            ("length", [[x, y], [x + 60, y + 40]], "api: POST measurement (length)"),
            ("ellipse", [[x, y], [x + 40, y + 30]], "api: POST measurement (ellipse ROI)"),
        ):
            answer = self.call(
                "POST",
                "/api/measurements",
                name,
                json={**base, "kind": kind, "points": points, "label": "load"},
                headers={"Accept": "application/json"},
            )
            if answer.status_code != 201:
                ERRORS[f"{name}: {answer.status_code} {answer.text[:120]}"] += 1
            time.sleep(0.5)

    @task(1)
    def compare_prior(self) -> None:
        current, prior = CONFIG["pair_current"], CONFIG["pair_prior"]
        answer = self.call(
            "GET",
            f"/api/studies/{current}/priors",
            "api: priors",
            headers={"Accept": "application/json"},
        )
        if answer.status_code == 200 and prior not in {
            p["study_instance_uid"] for p in answer.json()
        }:
            ERRORS["api: priors: the prior study is missing"] += 1
        if not self.prior_frames:
            self.prior_frames = self.open_study(prior, page=False)
        if self.prior_frames:
            for frame in random.sample(self.prior_frames, min(5, len(self.prior_frames))):
                self.image(frame, self.window)
                time.sleep(0.1)


class Presenter(Browser):
    fixed_count = 1
    wait_time = between(2.0, 2.0)

    def begin(self) -> None:
        self.cookies = dict(CONFIG["presenter_cookies"])
        self.frames = self.open_study(CONFIG["ct_study"], page=False)
        self.version = 0

    @task
    def next_slice(self) -> None:
        if not self.frames:
            return
        self.slice = (self.slice + random.choice((1, 2, 3))) % len(self.frames)
        frame = self.frames[self.slice]
        view = {
            "layout": "1x1",
            "viewports": [
                {
                    "study_instance_uid": frame["study"],
                    "series_instance_uid": frame["series"],
                    "sop_instance_uid": frame["sop"],
                    "frame": 1,
                    "window": {"center": self.window[0], "width": self.window[1]},
                    "zoom": 1,
                    "pan": None,
                    "rotation": 0,
                    "flipped": False,
                    "inverted": False,
                }
            ],
            "active": 0,
            "measurement": None,
        }
        self.call(
            "POST",
            f"/api/shares/{CONFIG['share_id']}/live",
            "api: POST live state (presenter)",
            json={"state": view},
            headers={"Accept": "application/json"},
        )
        self.image(frame, self.window, who=" (presenter)")  # its own viewer shows it too


class Follower(Browser):
    fixed_count = 0  # set from the config before the run
    wait_time = between(0.5, 0.5)

    def begin(self) -> None:
        opened = self.call("GET", CONFIG["share_path"], "setup: open the share link")
        if opened.status_code != 302:
            ERRORS[f"setup: share link answered {opened.status_code}"] += 1
        self.frames = self.open_study(CONFIG["ct_study"])
        self.by_sop = {f["sop"]: f for f in self.frames}
        self.seen = -1

    @task
    def follow(self) -> None:
        """Hold the stream open; on each new state, fetch what the presenter shows."""
        response = self.call(
            "GET",
            f"/api/shares/{CONFIG['share_id']}/live",
            "setup: live stream (connect)",
            headers={"Accept": "text/event-stream"},
            stream=True,
        )
        if response.status_code != 200:
            return
        event = ""
        try:
            for line in response.iter_lines(chunk_size=1, decode_unicode=True):
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "state":
                    message = json.loads(line[5:])
                    if message.get("version", -1) != self.seen:
                        self.seen = message.get("version", -1)
                        self.show(message.get("state") or {})
                elif line.startswith("data:") and event == "gone":
                    return
        finally:
            response.close()

    def show(self, state: dict[str, Any]) -> None:
        viewports = state.get("viewports") or []
        if not viewports:
            return
        shown = viewports[0]
        frame = self.by_sop.get(shown.get("sop_instance_uid", ""))
        window = shown.get("window") or {}
        if frame is not None:
            center, width = window.get("center", 40), window.get("width", 400)
            self.image(frame, (center, width), who=" (follower, as the presenter moves)")


def main() -> int:
    config_path, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    CONFIG.update(json.loads(config_path.read_text()))
    Follower.fixed_count = int(CONFIG["followers"])
    kinds: list[type[User]] = [Clinician, Radiologist, Presenter]
    if Follower.fixed_count:
        kinds.append(Follower)
    environment = Environment(user_classes=kinds, host=CONFIG["host"], events=events)
    runner = environment.create_local_runner()
    users = int(CONFIG["users"])
    started = time.monotonic()
    runner.start(users, spawn_rate=float(CONFIG.get("spawn_rate", 20)))
    deadline = started + float(CONFIG.get("ready_seconds", 90))
    while (len(READY) < users or runner.user_count < users) and time.monotonic() < deadline:
        gevent.sleep(0.2)
    ready_after = time.monotonic() - started
    environment.stats.reset_all()
    RECORD["on"] = True
    measured_from, epoch_from = time.monotonic(), time.time()
    gevent.sleep(float(CONFIG["seconds"]))
    RECORD["on"] = False
    epoch_to = time.time()
    measured = time.monotonic() - measured_from
    composition = dict(runner.user_classes_count)
    runner.quit()
    result_path.write_text(
        json.dumps(
            {
                "measured_seconds": measured,
                "measured_epoch": [epoch_from, epoch_to],
                "ready_seconds": ready_after,
                "ready_users": len(READY),
                "composition": dict(composition),
                "latencies_ms": LATENCIES,
                "by_name_ms": BY_NAME,
                "counts": dict(COUNTS),
                "errors": dict(ERRORS),
                "host": urlsplit(CONFIG["host"]).netloc,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
