"""Loupe's settings: every deployment choice read from the environment.

Embedded defaults (SQLite and a local data folder) make a demo run with nothing set; a
production deployment sets at least LOUPE_SECRET_KEY, LOUPE_ALLOWED_HOSTS and usually
DATABASE_URL. A value that is set but malformed stops start-up with a message naming it.

| variable | default | meaning |
|---|---|---|
| LOUPE_DATA_DIR | ./data | stored objects (content-addressed), SQLite file, temp files |
| LOUPE_CACHE_DIR | $LOUPE_DATA_DIR/cache | derived data kept per node (DICOM JSON metadata); safe to delete |
| DATABASE_URL | sqlite:///$LOUPE_DATA_DIR/loupe.sqlite3 | e.g. postgres://user@127.0.0.1:5432/loupe |
| LOUPE_SECRET_KEY | required unless LOUPE_DEMO or LOUPE_DEBUG | Django's SECRET_KEY |
| LOUPE_DEBUG | 0 | Django DEBUG; never on in production |
| LOUPE_DEMO | 0 | demo mode: a secret key is generated into the data folder |
| LOUPE_ALLOWED_HOSTS | 127.0.0.1,localhost | comma-separated |
| LOUPE_HTTPS | 0 | behind TLS: secure cookies with __Host- names, HSTS (subdomains too), X-Forwarded-Proto: https from the proxy taken as https |
| LOUPE_SSL_REDIRECT | 0 | with LOUPE_HTTPS, Django also redirects a request that came in over plain http to https (never /healthz, /readyz); off: nginx does it |
| LOUPE_MAX_INSTANCE_MB | 1024 | largest single DICOM object accepted |
| LOUPE_MAX_FRAME_MB | 1024 | largest decoded frame an object may declare |
| LOUPE_MAX_UPLOAD_MB | 4096 | largest request body (multipart or raw) |
| LOUPE_ZIP_MAX_RATIO | 200 | refuse zip members compressed more than this (bombs) |
| LOUPE_ZIP_MAX_TOTAL_MB | 16384 | refuse zips that expand to more than this |
| LOUPE_DUPLICATE_POLICY | reject | same SOP Instance UID, other bytes: reject (409) or overwrite |
| LOUPE_DB_PREPARED_STATEMENTS | 1 | PostgreSQL: ingest's per-object statement is prepared once per connection; 0 behind a transaction-pooling PgBouncer older than 1.21 |
| LOUPE_FRAME_CACHE_MB | 512 | decoded-frame cache, per worker process |
| LOUPE_DECODER_PROCESSES | 2 | decoder processes per server process for compressed frames; 0 decodes in the server process itself (no isolation: for measuring only) |
| LOUPE_DECODER_CPU_SECONDS | 30 | CPU time one frame's decode may use before its decoder process is ended |
| LOUPE_DECODER_MEMORY_MB | 2048 | memory (address space) a decoder process may take beyond its start |
| LOUPE_DECODER_TIMEOUT_SECONDS | 60 | wall-clock time one decode may take, waiting for a free decoder included |
| LOUPE_INGEST_DECODE_CHECK | first | compressed objects: decode the first frame (first), every frame (all) or none (off) before answering "stored" |
| LOUPE_INGEST_UNDECODABLE | reject | an object that fails that check: refuse it (reject, 422) or store it flagged undecodable (keep) |
| LOUPE_REDIS_URL | (none) | rendered-bytes cache in Redis instead of local memory |
| LOUPE_RENDER_CACHE_MB | 128 | rendered-bytes cache in local memory (no Redis), per worker process |
| LOUPE_RENDER_CACHE_ENTRIES | 1000 | entries of Django's local-memory cache (the default cache when there is no Redis) |
| LOUPE_RENDER_CACHE_SECONDS | 3600 | how long rendered bytes stay cached |
| LOUPE_TILE_SIZE | 256 | tile edge in pixels (256 or 512) |
| LOUPE_EMBED | 1 | EHR frames: SameSite=None; Secure; Partitioned session/CSRF cookies |
| LOUPE_LOCAL_ACCOUNT_ROLE | radiologist | role of a password account in no role group ("" = none) |
| LOUPE_TRUSTED_PROXIES | (none) | comma-separated proxy IPs whose X-Forwarded-For names the client (audit trail) |
| LOUPE_AUDIT_SOURCE_ID | loupe | the audit source (observer) named in FHIR AuditEvent exports |
| LOUPE_HL7_PORT | 2575 | TCP port of `manage.py hl7_listener` (HL7 v2 ADT over MLLP) |
| LOUPE_HL7_MAX_MESSAGE_KB | 1024 | largest HL7 message the listener reads; a larger one is refused (AR) and its connection closed |
| LOUPE_HL7_READ_TIMEOUT_SECONDS | 300 | an HL7 connection that sends no complete message for this long is closed |
| LOUPE_STOW_MAX_MB | 4096 | largest STOW-RS request body (`POST /dicom-web/studies`): 413 before reading when Content-Length exceeds it, and reading stops beyond it |
| LOUPE_DIMSE_AE_TITLE | LOUPE | AE title of `manage.py storescp` (the C-STORE SCP) |
| LOUPE_DIMSE_PORT | 11112 | TCP port of `manage.py storescp` |
| LOUPE_DIMSE_ALLOWED_CALLERS | (none: any caller) | comma-separated `AET` or `AET@address` entries the SCP accepts associations from; others are rejected (calling AE title not recognised) |
| LOUPE_SHARE_MAX_SECONDS | 2592000 | longest life of a share link (30 days); `expires_in` is capped to it, the default 72 h too |
| LOUPE_SHARE_GUESS_LIMIT | 20 | unknown share tokens one client address may try in 10 minutes before it gets 429 |
| LOUPE_RATE_LIMIT_LOGIN | 20/300 | failed password sign-ins one client address may make in that many seconds before it gets 429 with Retry-After (viewer/ratelimit.py; counted in Redis with LOUPE_REDIS_URL, so across nodes) |
| LOUPE_RATE_LIMIT_LOGIN_ACCOUNT | 10/300 | failed password sign-ins for one user name, from any address |
| LOUPE_RATE_LIMIT_SSO_START | 30/60 | single sign-on starts (`/oidc/authenticate/`) one client address may make |
| LOUPE_RATE_LIMIT_LAUNCH | 50/300 | refused EHR launches (signed, SMART and its callback) and popup hand-offs one client address may make |
| LOUPE_RATE_LIMIT_TOKEN | 60/60 | refused bearer tokens on `/dicom-web/` and `/fhir/` one client address may send |
| LOUPE_LIVE_MAX_STREAMS | 12 | live-session event streams one server process holds at once (each holds a thread; more get 503 and retry); keep it below gunicorn's threads (LOUPE_GUNICORN_THREADS, 16) |
| LOUPE_OIDC_ISSUER | (none: SSO off) | OpenID provider's issuer; when set, the six below without a default are required |
| LOUPE_OIDC_CLIENT_ID | required with SSO | Loupe's client at the provider (confidential) |
| LOUPE_OIDC_CLIENT_SECRET | required with SSO | its secret |
| LOUPE_OIDC_AUTHORIZATION_ENDPOINT | required with SSO | `manage.py oidc_discover <issuer>` prints these four |
| LOUPE_OIDC_TOKEN_ENDPOINT | required with SSO | |
| LOUPE_OIDC_USERINFO_ENDPOINT | required with SSO | |
| LOUPE_OIDC_JWKS_URI | required with SSO | the provider's RS256 keys |
| LOUPE_OIDC_END_SESSION_ENDPOINT | (none) | RP-initiated logout at the provider after Loupe's logout |
| LOUPE_OIDC_SCOPES | openid profile email | scopes asked for (add the one that releases roles, e.g. roles) |
| LOUPE_OIDC_ROLES_CLAIM | roles | claim holding the user's roles; a dotted path reaches nested ones (realm_access.roles) |
| LOUPE_OIDC_ROLE_MAP | radiologist=radiologist,clinician=clinician,administrator=administrator | claim value=Loupe role, comma-separated; unmapped values give no role |
| LOUPE_OIDC_TOKEN_AUTH | basic | client authentication at the token endpoint: basic or post |
| LOUPE_OIDC_TIMEOUT | 10 | seconds for each call to the provider |
| LOUPE_OIDC_ACCESS_TOKEN_AUDIENCE | (none: not checked) | with SSO, the `aud` the provider's JWT access tokens (RFC 9068) must carry to be accepted as `Authorization: Bearer` on DICOMweb and FHIR |
| LOUPE_DICOMWEB_CORS_ORIGINS | (none: no CORS) | comma-separated exact origins (`https://viewer.example.org`) allowed to call `/dicom-web/` and `/fhir/` from the browser, with bearer tokens (never cookies) |
| LOUPE_UPSTREAM_DICOMWEB | (none) | upstream DICOMweb archives searched beside the local one and fetched from on demand: a JSON array of `{"name": "pacs", "url": "http://host/dicom-web", "auth": {"basic": [user, password]} or {"bearer": token} or null, "timeout": 10}` (viewer/upstream/config.py) |
| LOUPE_UPSTREAM_CACHE_MB | 10240 | studies fetched from upstream archives are kept up to this size; past it the least recently opened are removed (never an object that also came in locally) |
| LOUPE_LOG_FORMAT | text | operations log on stderr: text, or json (one object per line: time, level, logger, message, request_id, path); secrets and query strings scrubbed in both |
| LOUPE_LOG_LEVEL | info | debug, info, warning, error or critical |
| LOUPE_READYZ_TIMEOUT_SECONDS | 2 | time /readyz gives its database, cache and storage checks before it reports one as timed out |
"""

from __future__ import annotations

import ipaddress
import secrets
import warnings
from pathlib import Path

import dj_database_url

from config.environment import (
    ImproperlyConfiguredEnv,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
)
from config.sso import sso_settings
from viewer.upstream.config import UpstreamConfigError, parse_upstreams

BASE_DIR = Path(__file__).resolve().parent.parent
MB = 1024 * 1024

DEBUG = env_bool("LOUPE_DEBUG", False)
DEMO = env_bool("LOUPE_DEMO", False)
HTTPS = env_bool("LOUPE_HTTPS", False)

DATA_DIR = Path(env_str("LOUPE_DATA_DIR", str(BASE_DIR / "data"))).resolve()
LOUPE_STORAGE_DIR = DATA_DIR / "objects"
LOUPE_TEMP_DIR = DATA_DIR / "tmp"
# Derived data a node keeps to answer faster (the DICOM JSON of stored objects): safe to
# delete at any time, remade on demand.
LOUPE_CACHE_DIR = Path(env_str("LOUPE_CACHE_DIR", str(DATA_DIR / "cache"))).resolve()
for _folder in (DATA_DIR, LOUPE_STORAGE_DIR, LOUPE_TEMP_DIR, DATA_DIR / "static"):
    _folder.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    configured = env_str("LOUPE_SECRET_KEY", "")
    if configured:
        if len(configured) < 32:
            raise ImproperlyConfiguredEnv("LOUPE_SECRET_KEY must be at least 32 characters")
        return configured
    if not (DEMO or DEBUG):
        raise ImproperlyConfiguredEnv(
            "LOUPE_SECRET_KEY is not set; set it (50 random characters) or run the demo "
            "(LOUPE_DEMO=1 / manage.py demo)"
        )
    key_file = DATA_DIR / "demo-secret-key"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("LOUPE_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "viewer",
    "ehrlaunch",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "viewer.dicomweb.cors.CorsMiddleware",
    "ehrlaunch.embedding.EmbeddingPolicyMiddleware",
    "viewer.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "viewer.sessions.AuthenticationMiddleware",
    "viewer.apitokens.BearerTokenMiddleware",
    "viewer.middleware.ShareSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "viewer.middleware.ViewerErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "viewer.context_processors.loupe_role",
            ],
        },
    },
]

_default_db = f"sqlite:///{DATA_DIR / 'loupe.sqlite3'}"
try:
    DATABASES = {
        "default": dj_database_url.parse(env_str("DATABASE_URL", _default_db), conn_max_age=60)
    }
except ValueError as exc:
    raise ImproperlyConfiguredEnv(f"DATABASE_URL cannot be used: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Persistent, like PostgreSQL's: reopening SQLite per request (and checkpointing the
    # WAL when the last connection closes) cost 4-9 ms per request in bench/ingest.py.
    DATABASES["default"]["CONN_MAX_AGE"] = 600
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers work while an import writes; IMMEDIATE takes the write lock at
        # BEGIN so two importers queue instead of failing with "database is locked".
        # synchronous=FULL syncs the WAL at every commit, as PostgreSQL does: with NORMAL
        # (synced at checkpoints) a power loss could roll back the rows of objects already
        # reported stored, leaving their files behind as orphans for verify_storage.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Tests use a file too (Django's default is a shared-cache in-memory database, whose
    # table locks fail at once instead of waiting): concurrent requests to the live
    # server then queue on the busy timeout exactly as in a deployment.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-loupe.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_REDIS_URL = env_str("LOUPE_REDIS_URL", "")
CACHES: dict[str, dict[str, object]] = {
    "default": (
        {
            # Fails open (viewer.cache): Redis down or hung, calls answer as misses within
            # the socket timeout and Loupe keeps serving without its caches; /readyz says so.
            "BACKEND": "viewer.cache.FailOpenRedisCache",
            "LOCATION": _REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
        if _REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": env_int("LOUPE_RENDER_CACHE_ENTRIES", 1000, minimum=10)},
        }
    )
}
# Sessions: cached in Redis when there is one (shared by every worker, so a logout or a
# new launch is seen everywhere at once); otherwise read from the database each request. A
# per-process local-memory cache would let another worker accept a session already ended.
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db"
    if _REDIS_URL
    else "viewer.sessions"  # Django's database sessions, read with their user in one query
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "worklist"
LOGOUT_REDIRECT_URL = "login"

# Single sign-on (config/sso.py; ehrlaunch/auth.py maps claims to a user and roles). The
# OIDC backend answers only on its callback with a state, nonce and PKCE verifier.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "ehrlaunch.auth.LoupeOIDCBackend",
]
_SSO = sso_settings()
LOUPE_OIDC_ENABLED: bool = _SSO["LOUPE_OIDC_ENABLED"]
LOUPE_OIDC_ISSUER: str = _SSO["LOUPE_OIDC_ISSUER"]
LOUPE_OIDC_ROLES_CLAIM: str = _SSO["LOUPE_OIDC_ROLES_CLAIM"]
LOUPE_OIDC_ROLE_MAP: dict[str, str] = _SSO["LOUPE_OIDC_ROLE_MAP"]
LOUPE_OIDC_END_SESSION_ENDPOINT: str = _SSO["LOUPE_OIDC_END_SESSION_ENDPOINT"]
OIDC_RP_CLIENT_ID: str = _SSO["OIDC_RP_CLIENT_ID"]
OIDC_RP_CLIENT_SECRET: str = _SSO["OIDC_RP_CLIENT_SECRET"]
OIDC_OP_AUTHORIZATION_ENDPOINT: str = _SSO["OIDC_OP_AUTHORIZATION_ENDPOINT"]
OIDC_OP_TOKEN_ENDPOINT: str = _SSO["OIDC_OP_TOKEN_ENDPOINT"]
OIDC_OP_USER_ENDPOINT: str = _SSO["OIDC_OP_USER_ENDPOINT"]
OIDC_OP_JWKS_ENDPOINT: str = _SSO["OIDC_OP_JWKS_ENDPOINT"]
OIDC_RP_SIGN_ALGO: str = _SSO["OIDC_RP_SIGN_ALGO"]
OIDC_RP_SCOPES: str = _SSO["OIDC_RP_SCOPES"]
OIDC_USE_PKCE: bool = _SSO["OIDC_USE_PKCE"]
OIDC_PKCE_CODE_CHALLENGE_METHOD: str = _SSO["OIDC_PKCE_CODE_CHALLENGE_METHOD"]
OIDC_PKCE_CODE_VERIFIER_SIZE: int = _SSO["OIDC_PKCE_CODE_VERIFIER_SIZE"]
OIDC_USE_NONCE: bool = _SSO["OIDC_USE_NONCE"]
OIDC_STATE_SIZE: int = _SSO["OIDC_STATE_SIZE"]
OIDC_NONCE_SIZE: int = _SSO["OIDC_NONCE_SIZE"]
OIDC_STORE_ACCESS_TOKEN: bool = _SSO["OIDC_STORE_ACCESS_TOKEN"]
OIDC_STORE_ID_TOKEN: bool = _SSO["OIDC_STORE_ID_TOKEN"]
OIDC_CREATE_USER: bool = _SSO["OIDC_CREATE_USER"]
OIDC_VERIFY_SSL: bool = _SSO["OIDC_VERIFY_SSL"]
OIDC_TIMEOUT: int = _SSO["OIDC_TIMEOUT"]
OIDC_TOKEN_USE_BASIC_AUTH: bool = _SSO["OIDC_TOKEN_USE_BASIC_AUTH"]
# Bearer tokens on DICOMweb and FHIR (viewer/apitokens.py): the audience an OIDC access
# token must name ("" checks none), and the origins CORS answers (viewer/dicomweb/cors.py).
LOUPE_OIDC_ACCESS_TOKEN_AUDIENCE = env_str("LOUPE_OIDC_ACCESS_TOKEN_AUDIENCE", "").strip()


def _cors_origins() -> list[str]:
    origins = [o.rstrip("/") for o in env_list("LOUPE_DICOMWEB_CORS_ORIGINS", [])]
    for origin in origins:
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest or "*" in rest:
            raise ImproperlyConfiguredEnv(
                f"LOUPE_DICOMWEB_CORS_ORIGINS: {origin!r} is not an exact origin "
                "(scheme://host[:port], no wildcard, no path)"
            )
    return origins


LOUPE_DICOMWEB_CORS_ORIGINS = _cors_origins()

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"  # collectstatic target for deployments
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True  # serve static/ without a collectstatic step

# Uploads: small files stay in memory, larger ones spill to the data folder's temp dir.
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * MB
FILE_UPLOAD_TEMP_DIR = str(LOUPE_TEMP_DIR)
DATA_UPLOAD_MAX_NUMBER_FILES = 2000

LOUPE_MAX_INSTANCE_BYTES = env_int("LOUPE_MAX_INSTANCE_MB", 1024, minimum=1) * MB
LOUPE_MAX_FRAME_BYTES = env_int("LOUPE_MAX_FRAME_MB", 1024, minimum=1) * MB
LOUPE_MAX_UPLOAD_BYTES = env_int("LOUPE_MAX_UPLOAD_MB", 4096, minimum=1) * MB
LOUPE_ZIP_MAX_RATIO = env_int("LOUPE_ZIP_MAX_RATIO", 200, minimum=2)
LOUPE_ZIP_MAX_TOTAL_BYTES = env_int("LOUPE_ZIP_MAX_TOTAL_MB", 16384, minimum=1) * MB
# Rendering: decoded-frame LRU (per process), rendered-bytes cache, tile size.
LOUPE_FRAME_CACHE_MB = env_int("LOUPE_FRAME_CACHE_MB", 512, minimum=16)
LOUPE_RENDER_CACHE_SECONDS = env_int("LOUPE_RENDER_CACHE_SECONDS", 3600, minimum=0)
LOUPE_RENDER_CACHE_BYTES = env_int("LOUPE_RENDER_CACHE_MB", 128, minimum=1) * MB
LOUPE_REDIS_URL = _REDIS_URL
LOUPE_RENDER_CACHE_MAX_ITEM_BYTES = 8 * MB
LOUPE_TILE_SIZE = int(env_choice("LOUPE_TILE_SIZE", "256", ("256", "512")))
# Decoders of compressed pixel data are untrusted (viewer/dicom/decoder_pool.py): they run
# in worker processes under these limits. 0 processes = in the server process (measuring).
LOUPE_DECODER_PROCESSES = env_int("LOUPE_DECODER_PROCESSES", 2, minimum=0, maximum=64)
LOUPE_DECODER_CPU_SECONDS = env_int("LOUPE_DECODER_CPU_SECONDS", 30, minimum=1)
LOUPE_DECODER_MEMORY_BYTES = env_int("LOUPE_DECODER_MEMORY_MB", 2048, minimum=64) * MB
LOUPE_DECODER_TIMEOUT_SECONDS = env_int("LOUPE_DECODER_TIMEOUT_SECONDS", 60, minimum=1)
# Ingest decodes compressed frames before it answers "stored" (first, all or off), and
# refuses (reject) or keeps, flagged undecodable (keep), an object that does not decode.
LOUPE_INGEST_DECODE_CHECK = env_choice(
    "LOUPE_INGEST_DECODE_CHECK", "first", ("first", "all", "off")
)
LOUPE_INGEST_UNDECODABLE = env_choice("LOUPE_INGEST_UNDECODABLE", "reject", ("reject", "keep"))
# A local account in no role group acts as this role (viewer/access.py); "" for none.
LOUPE_LOCAL_ACCOUNT_ROLE = env_choice(
    "LOUPE_LOCAL_ACCOUNT_ROLE", "radiologist", ("radiologist", "clinician", "administrator", "")
)
LOUPE_DUPLICATE_POLICY = env_choice("LOUPE_DUPLICATE_POLICY", "reject", ("reject", "overwrite"))
# Django leaves psycopg's prepared statements off (for connection poolers); ingest turns
# them on for its own per-object statement, which saves PostgreSQL planning it each time.
LOUPE_DB_PREPARED_STATEMENTS = env_bool("LOUPE_DB_PREPARED_STATEMENTS", True)


def _trusted_proxies() -> frozenset[str]:
    addresses = env_list("LOUPE_TRUSTED_PROXIES", [])
    try:
        return frozenset(str(ipaddress.ip_address(a)) for a in addresses if a)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"LOUPE_TRUSTED_PROXIES: {exc}") from None


# Audit trail (viewer.services.audit): the client address behind trusted proxies, and the
# audit source ID (PS3.15 AuditSourceID) named in exports.
LOUPE_TRUSTED_PROXIES = _trusted_proxies()
LOUPE_AUDIT_SOURCE_ID = env_str("LOUPE_AUDIT_SOURCE_ID", "loupe")

# HL7 v2 ADT in (viewer/hl7/, manage.py hl7_listener): the MLLP port, the largest message
# read (a bound on what one connection may buffer), how long a connection may stay silent.
LOUPE_HL7_PORT = env_int("LOUPE_HL7_PORT", 2575, minimum=1, maximum=65535)
LOUPE_HL7_MAX_MESSAGE_BYTES = (
    env_int("LOUPE_HL7_MAX_MESSAGE_KB", 1024, minimum=1, maximum=64 * 1024) * 1024
)
LOUPE_HL7_READ_TIMEOUT_SECONDS = env_int("LOUPE_HL7_READ_TIMEOUT_SECONDS", 300, minimum=1)

# STOW-RS (viewer/dicomweb/stow.py): the largest request body read.
LOUPE_STOW_MAX_BYTES = env_int("LOUPE_STOW_MAX_MB", 4096, minimum=1) * MB
# DIMSE in (viewer/dimse/, manage.py storescp): the SCP's AE title and port, and the
# calling AE titles (optionally @address) it accepts; empty: any caller.
LOUPE_DIMSE_AE_TITLE = env_str("LOUPE_DIMSE_AE_TITLE", "LOUPE")
LOUPE_DIMSE_PORT = env_int("LOUPE_DIMSE_PORT", 11112, minimum=1, maximum=65535)
LOUPE_DIMSE_ALLOWED_CALLERS = env_list("LOUPE_DIMSE_ALLOWED_CALLERS", [])

# Tumor-board share links (viewer.services.sharing): their longest life, and how many
# unknown tokens one address may try in ten minutes (the cache counts; Redis across nodes).
LOUPE_SHARE_MAX_SECONDS = env_int("LOUPE_SHARE_MAX_SECONDS", 30 * 24 * 3600, minimum=60)
LOUPE_SHARE_GUESS_LIMIT = env_int("LOUPE_SHARE_GUESS_LIMIT", 20, minimum=1)
LOUPE_LIVE_MAX_STREAMS = env_int("LOUPE_LIVE_MAX_STREAMS", 12, minimum=1)

# A PACS behind Loupe (viewer/upstream/, viewer/services/upstream.py): the upstream
# DICOMweb archives, and the size the studies fetched from them may take locally.
try:
    LOUPE_UPSTREAM_DICOMWEB = parse_upstreams(env_str("LOUPE_UPSTREAM_DICOMWEB", ""))
except UpstreamConfigError as exc:
    raise ImproperlyConfiguredEnv(f"LOUPE_UPSTREAM_DICOMWEB: {exc}") from None
LOUPE_UPSTREAM_CACHE_BYTES = env_int("LOUPE_UPSTREAM_CACHE_MB", 10240, minimum=1) * MB

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["viewer.api.authentication.LoupeSessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "viewer.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

# Security headers (docs/security.md §4). Framing is refused everywhere
# until the EHR launch adds its per-EHR allowlist.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# "same-origin", not "no-referrer": with no-referrer, browsers send "Origin: null" on form
# POSTs and Django's CSRF origin check refuses them. Nothing leaks to other origins either way.
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Inside an EHR's cross-site frame, cookies must be SameSite=None; Secure (browsers accept
# Secure cookies from https and from loopback http) and Partitioned (ehrlaunch/embedding.py).
LOUPE_EMBED = env_bool("LOUPE_EMBED", True)
if LOUPE_EMBED:
    SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "None"
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
# Behind TLS (LOUPE_HTTPS=1; `manage.py check --deploy` is clean with it): the proxy
# (nginx, the only client of the nodes' ports) says X-Forwarded-Proto: https and redirects
# plain http to https itself (config/nginx/loupe.conf). LOUPE_SSL_REDIRECT=1 makes Django
# redirect too, where a node could be reached without the proxy; never the health checks,
# which probes call on a node's own http port.
LOUPE_SSL_REDIRECT = env_bool("LOUPE_SSL_REDIRECT", False)
if HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    SECURE_HSTS_SECONDS = 31536000
    # Loupe's host and any name under it; the registrable domain's other hosts are not
    # Loupe's to commit to https.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = LOUPE_SSL_REDIRECT
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SILENCED_SYSTEM_CHECKS = [
    # security.W021 (SECURE_HSTS_PRELOAD off): a preload-list entry is made for a whole
    # registrable domain (the hospital's, served from its apex), never from one host like
    # loupe.example.org; the header alone would promise what only the domain's owner can.
    "security.W021",
]
if HTTPS and not LOUPE_SSL_REDIRECT:
    # security.W008 (SECURE_SSL_REDIRECT off): with LOUPE_HTTPS, nginx in front redirects
    # http to https (its port-80 server) and nothing else reaches a node's port; the nodes
    # themselves speak plain http to nginx, probes and scripts on loopback. Without
    # LOUPE_HTTPS the check still warns, as it should.
    SILENCED_SYSTEM_CHECKS.append("security.W008")

# Operations log (viewer/logjson.py): text or one JSON object per line, on stderr. Every
# handler scrubs secrets (bearer tokens, token/code/launch values, session cookies, share
# tokens in paths, query strings) and the audit API's patient IDs before it writes.
LOUPE_LOG_FORMAT = env_choice("LOUPE_LOG_FORMAT", "text", ("text", "json"))
LOUPE_LOG_LEVEL = env_choice(
    "LOUPE_LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")
).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "viewer.logjson.JsonFormatter"},
    },
    "filters": {
        # Paths that carry a patient ID (the audit API) are logged without it.
        "phi_paths": {"()": "viewer.log_redaction.RedactPatientPaths"},
        "secrets": {"()": "viewer.logjson.ScrubSecrets"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "json" if LOUPE_LOG_FORMAT == "json" else "plain",
            "filters": ["secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOUPE_LOG_LEVEL},
    "loggers": {
        # Django's own handlers (a DEBUG-only console, mail to ADMINS) are replaced by the
        # root's one: every record is written once, in the chosen format.
        "django": {"handlers": [], "level": "INFO"},
        # Decoder failures are answered as 422 with their reason; pydicom's own tracebacks
        # for them would only fill the log.
        "pydicom": {"level": "CRITICAL"},
        # Django logs the path of every 4xx/5xx answer; runserver logs every request line.
        "django.request": {"filters": ["phi_paths"]},
        "django.server": {"handlers": ["console"], "propagate": False, "filters": ["phi_paths"]},
    },
}

# Health checks (viewer/health.py): /readyz gives its checks (database, cache, storage)
# this long in all before it answers that one timed out.
LOUPE_READYZ_TIMEOUT_SECONDS = env_int("LOUPE_READYZ_TIMEOUT_SECONDS", 2, minimum=1, maximum=30)

# pydicom warns (UserWarning) about every out-of-spec value it reads; real archives are
# full of them and ingest/rendering already report what matters.
warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\..*)?")


# Rate limits (issue 17)
# viewer/ratelimit.py: "<count>/<seconds>", a fixed window per client address (or per
# account) that starts at the first event counted; failures are counted, not use (but
# for the SSO start). Kept in the cache: Redis with LOUPE_REDIS_URL, so every node shares
# the counts. Share-link guesses keep LOUPE_SHARE_GUESS_LIMIT (in 10 minutes) above.
def _rate(name: str, default: str) -> tuple[int, int]:
    raw = env_str(name, default)
    count, slash, seconds = raw.strip().partition("/")
    try:
        parsed = (int(count), int(seconds))
    except ValueError:
        parsed = (0, 0)
    if not slash or parsed[0] < 1 or parsed[1] < 1:
        raise ImproperlyConfiguredEnv(
            f"{name}={raw!r} is not <count>/<seconds> with both at least 1 (e.g. {default})"
        )
    return parsed


LOUPE_RATE_LIMIT_LOGIN = _rate("LOUPE_RATE_LIMIT_LOGIN", "20/300")
LOUPE_RATE_LIMIT_LOGIN_ACCOUNT = _rate("LOUPE_RATE_LIMIT_LOGIN_ACCOUNT", "10/300")
LOUPE_RATE_LIMIT_SSO_START = _rate("LOUPE_RATE_LIMIT_SSO_START", "30/60")
LOUPE_RATE_LIMIT_LAUNCH = _rate("LOUPE_RATE_LIMIT_LAUNCH", "50/300")
LOUPE_RATE_LIMIT_TOKEN = _rate("LOUPE_RATE_LIMIT_TOKEN", "60/60")
