"""Loupe's gunicorn configuration: ``gunicorn -c config/gunicorn.py config.wsgi``.

Every value can be overridden on the command line (``--bind``, ``--workers`` …); the
defaults below are the ones the demo, the server tests and the README use.

* ``gthread`` workers (2 processes × 16 threads, ``LOUPE_GUNICORN_THREADS``): rendering
  is CPU work in numpy and the codecs, which release the interpreter lock; more processes
  than cores only add memory. The threads are many because a live share session's event
  stream holds one while it is open (it mostly sleeps): at most
  ``LOUPE_LIVE_MAX_STREAMS`` (12) per process, so that four are always left for images.
* Each worker process starts its own decoder processes for compressed pixel data
  (``LOUPE_DECODER_PROCESSES``, ``viewer/dicom/decoder_pool.py``) when it loads the
  application (``config/wsgi.py``). No ``preload_app``: the decoder pool belongs to the
  process that made it, and a pool made in the master would be shared by its forks.
* ``timeout`` is above the decoders' own wall-clock limit (LOUPE_DECODER_TIMEOUT_SECONDS,
  60 s), so that a slow decode fails its own request rather than the worker.
* Access log lines carry the path only (``%(U)s``), never the query string: a launch
  token or an IID patient ID must not reach the log. gunicorn's own handlers go through
  ``viewer.logjson.GunicornLogger``: secrets are scrubbed (a share link's token in
  ``/s/<token>`` too) and, with ``LOUPE_LOG_FORMAT=json``, the error log (stderr) and the
  access log (stdout) are one JSON object per line, as Django's records are.
"""

import os

bind = os.environ.get("LOUPE_BIND", "127.0.0.1:8000")
workers = 2
threads = int(os.environ.get("LOUPE_GUNICORN_THREADS", "16"))
worker_class = "gthread"
timeout = 120
graceful_timeout = 30
control_socket_disable = True  # two masters on one machine would share ~/.gunicorn otherwise
accesslog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
logger_class = "viewer.logjson.GunicornLogger"
