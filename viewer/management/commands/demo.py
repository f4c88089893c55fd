"""``manage.py demo``: a working Loupe with demo studies on its embedded defaults.

Migrates the database, creates the user ``demo`` with a fresh random password (printed,
never stored in clear), writes the CT torso phantom (current study and a prior one year
earlier, ``viewer.demo.phantom``) into the data folder, imports it together with real
sample files shipped inside the pydicom and pydicom-data packages, (re)loads the shipped
hanging protocols (so that the current phantom study opens with its prior hung beside it
by "CT chest with prior", linked), registers the demo EHR, makes a live tumor-board share link of the current phantom study
(presented by ``demo``; ``viewer.services.sharing``) and prints it, then serves Loupe on
127.0.0.1 with gunicorn (``config/gunicorn.py``). Re-running it is cheap: everything already stored is reported
as a duplicate.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from pydicom.data import get_testdata_file

from ehrlaunch.demo import setup as demo_ehr
from viewer.demo.phantom import DEFAULT_SPEC, write_phantom
from viewer.models import Study
from viewer.services import hanging, ingest, sharing

# The tumor-board link the demo prints: live, for a day.
TUMOR_BOARD_SECONDS = 24 * 3600

# The documented gunicorn configuration (workers, threads, a log without query strings).
GUNICORN_CONFIG = settings.BASE_DIR / "config" / "gunicorn.py"

# Real files inside the pydicom (test_files) and pydicom-data (data_store) packages.
SAMPLE_FILES = (
    "CT_small.dcm",  # CT, 128×128, pydicom
    "MR_small.dcm",  # MR, 64×64, pydicom
    "MR2_UNCI.dcm",  # MR 1024×1024 head, NEMA WG04, pydicom-data
    "RG1_UNCR.dcm",  # CR radiograph 1955×1841, MONOCHROME1, NEMA WG04, pydicom-data
    "US1_UNCR.dcm",  # ultrasound RGB, NEMA WG04, pydicom-data
    "emri_small.dcm",  # multi-frame MR, 10 frames, pydicom-data
    "color3d_jpeg_baseline.dcm",  # multi-frame colour ultrasound, 120 frames JPEG, pydicom-data
)


class Command(BaseCommand):
    help = "Set up Loupe with demo studies and serve it on 127.0.0.1."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--ehr-port", type=int, default=8001, help="the demo EHR's port")
        parser.add_argument("--no-serve", action="store_true", help="set up, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        protocols = self._shipped_hanging_protocols()
        password, user = self._demo_user()
        results = self._import_demo_studies()
        counts = ingest.summarize(results)
        for result in results:
            if not result.ok:
                self.stderr.write(f"  not imported: {result.source}: {result.reason}")
        url = f"http://127.0.0.1:{options['port']}/"
        ehr_config = demo_ehr.configure(
            Path(settings.DATA_DIR) / "demo", loupe_url=url, port=options["ehr_port"]
        )
        board = self._tumor_board_link(user, results, url)
        self.stdout.write(
            "\nLoupe demo ready\n"
            f"  demo studies: {counts['stored']} new, {counts['duplicate']} already stored, "
            f"{counts['rejected']} refused\n"
            f"  hanging protocols: {protocols} shipped ones loaded (the current CT phantom "
            "opens with its prior beside it, linked)\n"
            f"  data folder:  {settings.DATA_DIR}\n"
            f"  open:         {url}\n"
            f"  log in as:    demo / {password}\n"
            f"  demo EHR:     http://localhost:{options['ehr_port']}/ (a chart framing Loupe)\n"
            f"  tumor board:  {board[0]}\n"
            "                (a live, read-only share link of the current CT phantom, valid for a\n"
            "                 day: open it in another browser, no login needed)\n"
            f"  present it:   {board[1]}\n"
            "                (as demo: whoever opened the link follows what you show)\n"
        )
        if options["no_serve"]:
            return
        self._start_ehr(ehr_config)
        self._serve(options["port"])

    def _shipped_hanging_protocols(self) -> int:
        """The shipped hanging protocols as their files say (upserted by name, as
        ``load_hanging_protocols`` does): migrate loads them only into a new database, so
        a demo database made before a change to the files, or whose protocols were
        deleted, would otherwise open the phantom pair without "CT chest with prior".
        (An edit made in the admin to a shipped protocol is reset; others are kept.)"""
        loaded = hanging.load()
        return len(loaded.created) + len(loaded.updated)

    def _demo_user(self) -> tuple[str, Any]:
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username="demo")
        user.set_password(password)
        user.save()
        return password, user

    def _tumor_board_link(
        self, user: Any, results: list[ingest.IngestResult], url: str
    ) -> tuple[str, str]:
        """A new live share link of the current phantom study (each run makes one; the
        Shares page lists and revokes them), and where demo presents it."""
        uids = {r.study_instance_uid for r in results if r.source.startswith("phantom/current/")}
        study = Study.objects.filter(study_instance_uid__in=uids).first()
        if study is None:
            return ("(none: the CT phantom was not imported)", "–")
        made = sharing.create_for_user(user, [study], live=True, seconds=TUMOR_BOARD_SECONDS)
        presenting = f"{url}viewer/{study.study_instance_uid}/?present={made.share.id}"
        return f"{url.rstrip('/')}{sharing.link_path(made.token)}", presenting

    def _import_demo_studies(self) -> list[ingest.IngestResult]:
        phantom_dir = Path(settings.DATA_DIR) / "demo" / "ct-phantom"
        if not (phantom_dir / "ground_truth.json").exists():
            self.stdout.write("Generating the CT phantom (two studies, 128 slices)…")
            paths = write_phantom(phantom_dir, DEFAULT_SPEC)
        else:
            paths = sorted(phantom_dir.glob("*/*.dcm"))
        results = [ingest.ingest_file(p, source=f"phantom/{p.parent.name}/{p.name}") for p in paths]
        for name in SAMPLE_FILES:
            found = get_testdata_file(name)
            if found is None:
                self.stderr.write(f"  sample {name} not found (is pydicom-data installed?)")
                continue
            results.append(ingest.ingest_file(Path(str(found)), source=f"sample/{name}"))
        return results

    def _start_ehr(self, config: Path) -> None:
        """The demo EHR runs beside gunicorn; Ctrl-C in the terminal stops both."""
        subprocess.Popen([sys.executable, "-m", "ehrlaunch.demo.ehr", str(config)])

    def _serve(self, port: int) -> None:
        gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
        if gunicorn is None:
            raise CommandError("gunicorn is not installed (pip install -r requirements.txt)")
        self.stdout.write("Serving (Ctrl-C stops)…\n")
        sys.stdout.flush()
        os.execv(  # noqa: S606 (a fixed argument list; the demo becomes the server)
            gunicorn,
            [gunicorn, "-c", str(GUNICORN_CONFIG), "config.wsgi", "--bind", f"127.0.0.1:{port}"],
        )
